"""A labelled schema for measuring `repl init`'s detection: tables of a web shop, a CRM and
an HR system in several languages, each column labelled personal or not by a person, with
deterministic sample values. It has personal data under misleading names (`ref` holding
card numbers, `account` holding IBANs, `contact` holding e-mail addresses, `owner_contact`
holding phone numbers, `visitor` holding IP addresses) and clean columns whose names or
values look personal at first sight (company and product names, serial numbers, order
numbers, version strings, checksums, token counts, verified flags).

A column is personal when a masked copy for developers must not show it as it is: it
identifies or locates a person, or is free text people write (notes, messages,
comments), or is a secret. `description` of a product is not personal: detection that
flags it is counted as a false positive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg import sql

ROWS = 60
FIRST = ["Anna", "Lukas", "Sofia", "Mateo", "Chloé", "Jan", "Giulia", "Tiago", "Emma", "Noah"]
LAST = ["Müller", "García", "Rossi", "Dubois", "de Vries", "Silva", "Smith", "Kowalski"]
STREETS = ["Hauptstraße", "Calle Mayor", "Rue de la Paix", "Via Roma", "Kerkstraat"]
CITIES = ["Berlin", "Madrid", "Lyon", "Milano", "Utrecht", "Porto"]


def _digest(i: int, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}{i}".encode()).digest()[:8], "big")


def luhn_complete(body: str) -> str:
    """`body` with the check digit that makes it pass Luhn."""
    total = 0
    for k, d in enumerate(reversed(body)):
        n = int(d) * (2 if k % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return body + str((10 - total % 10) % 10)


def card(i: int) -> str:
    number = luhn_complete("4" + str(_digest(i, "card") % 10**14).zfill(14))
    return " ".join(number[k:k + 4] for k in range(0, 16, 4)) if i % 2 else number


def iban(i: int) -> str:
    bban = str(_digest(i, "iban") % 10**18).zfill(18)
    check = 98 - int(bban + "131400") % 97  # DE = 13 14, check digits 00
    return f"DE{check:02d}{bban}"


def phone(i: int) -> str:
    n = _digest(i, "phone")
    forms = [f"+49 30 {n % 10**7:07d}", f"0{n % 900 + 100} {n % 10**6:06d}",
             f"+33 6 {n % 100:02d} {n // 100 % 100:02d} {n // 10**4 % 100:02d} "
             f"{n // 10**6 % 100:02d}", f"({n % 900 + 100}) {n % 900 + 100}-{n % 10**4:04d}"]
    return forms[i % len(forms)]


def email(i: int) -> str:
    return f"{FIRST[i % 10].lower().replace('é', 'e')}.{i}@mail{i % 3}.example.org"


def name(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}"


def ip(i: int) -> str:
    return f"10.{i % 250}.{i * 7 % 250}.{i * 13 % 250 + 1}" if i % 4 else f"2001:db8::{i:x}"


def day(i: int, start: date = date(1950, 1, 1)) -> date:
    return start + timedelta(days=_digest(i, "day") % 20000)


def moment(i: int) -> datetime:
    return datetime(2024, 1, 1) + timedelta(minutes=_digest(i, "t") % 500000)


def note(i: int) -> str:
    notes = ["Called back, prefers e-mail", f"Reach me at {email(i + 1)} after 6pm",
             "Delivery to the neighbour", f"New number {phone(i + 2)}", "VIP since 2019"]
    return notes[i % len(notes)]


@dataclass(frozen=True)
class Col:
    name: str
    type: str
    value: Callable[[int], object]
    personal: bool


def P(name: str, type_: str, value: Callable[[int], object]) -> Col:  # noqa: N802
    return Col(name, type_, value, True)


def N(name: str, type_: str, value: Callable[[int], object]) -> Col:  # noqa: N802
    return Col(name, type_, value, False)


def _id(i: int) -> int:
    return i


TABLES: dict[str, tuple[Col, ...]] = {
    "users": (
        N("id", "bigint PRIMARY KEY", _id), P("email", "text", email),
        P("password_hash", "text", lambda i: hashlib.sha256(b"%d" % i).hexdigest()),
        P("first_name", "text", lambda i: FIRST[i % 10]),
        P("last_name", "text", lambda i: LAST[i % 8]), P("display_name", "text", name),
        P("phone", "text", phone), P("date_of_birth", "date", day),
        N("country", "char(2)", lambda i: ["DE", "ES", "FR", "IT"][i % 4]),
        N("plan", "text", lambda i: ["starter", "business"][i % 2]),
        N("created_at", "timestamptz", moment), N("email_verified", "boolean", lambda i: i % 2),
        N("login_count", "integer", lambda i: i * 3), N("token_count", "bigint", _id)),
    "kunden": (
        N("id", "bigint PRIMARY KEY", _id), P("vorname", "text", lambda i: FIRST[i % 10]),
        P("nachname", "text", lambda i: LAST[i % 8]),
        P("strasse", "text", lambda i: f"{STREETS[i % 5]} {i}"),
        P("plz", "text", lambda i: f"{10115 + i}"), P("ort", "text", lambda i: CITIES[i % 6]),
        P("telefon", "text", phone), P("geburtsdatum", "date", day),
        N("kundennummer", "text", lambda i: f"K-{i:06d}"), N("erstellt_am", "date", day)),
    "clientes": (
        N("id", "bigint PRIMARY KEY", _id), P("nombre", "text", lambda i: FIRST[i % 10]),
        P("apellidos", "text", lambda i: LAST[i % 8]), P("correo", "text", email),
        P("direccion", "text", lambda i: f"{STREETS[i % 5]} {i}"),
        P("ciudad", "text", lambda i: CITIES[i % 6]),
        P("codigo_postal", "text", lambda i: f"{28000 + i}"), P("movil", "text", phone),
        P("dni", "text", lambda i: f"{_digest(i, 'dni') % 10**8:08d}Z"),
        N("alta", "date", day)),
    "utilisateurs": (
        N("id", "bigint PRIMARY KEY", _id), P("prenom", "text", lambda i: FIRST[i % 10]),
        P("nom", "text", lambda i: LAST[i % 8]), P("courriel", "text", email),
        P("adresse", "text", lambda i: f"{i} {STREETS[2]}"), P("ville", "text", lambda i: "Lyon"),
        P("telephone", "text", phone), P("date_naissance", "date", day),
        N("langue", "text", lambda i: "fr")),
    "orders": (
        N("id", "bigint PRIMARY KEY", _id), N("customer_id", "bigint", _id),
        N("order_number", "text", lambda i: f"2024-{i:06d}"),
        N("total", "numeric(10,2)", lambda i: i * 1.5), N("currency", "char(3)", lambda i: "EUR"),
        N("status", "text", lambda i: ["pending", "shipped"][i % 2]),
        P("card_number", "text", card), P("billing_address", "text", lambda i: STREETS[i % 5]),
        P("shipping_city", "text", lambda i: CITIES[i % 6]), P("ip_address", "inet", ip),
        N("placed_at", "timestamptz", moment)),
    "payments": (
        N("id", "bigint PRIMARY KEY", _id), N("order_id", "bigint", _id),
        P("ref", "text", card), P("account", "text", iban),
        N("amount", "numeric(10,2)", lambda i: i * 2.25),
        N("reference_code", "text", lambda i: f"INV-{i:05d}-{_digest(i, 'r') % 1000:03d}"),
        N("processed_at", "timestamptz", moment)),
    "support_tickets": (
        N("id", "bigint PRIMARY KEY", _id), N("user_id", "bigint", _id),
        N("subject", "text", lambda i: ["Login fails", "Refund", "Invoice copy"][i % 3]),
        P("message", "text", note), P("contact", "text", email), P("notes", "text", note),
        N("priority", "smallint", lambda i: i % 3), N("created_at", "timestamptz", moment)),
    "products": (
        N("id", "bigint PRIMARY KEY", _id), N("sku", "text", lambda i: f"SKU-{i:05d}"),
        N("name", "text", lambda i: f"Desk lamp model {i}"),
        N("description", "text", lambda i: f"A lamp with {i % 5 + 1} settings."),
        N("price", "numeric(8,2)", lambda i: 19.99 + i), N("stock", "integer", _id),
        N("category", "text", lambda i: "lighting")),
    "companies": (
        N("id", "bigint PRIMARY KEY", _id), N("name", "text", lambda i: f"Acme {i} GmbH"),
        N("vat_number", "text", lambda i: f"DE{_digest(i, 'vat') % 10**9:09d}"),
        N("website", "text", lambda i: f"https://acme{i}.example.com"),
        N("industry", "text", lambda i: "retail"), N("employees", "integer", _id),
        N("founded", "date", day)),
    "sessions": (
        P("token", "text PRIMARY KEY", lambda i: hashlib.md5(b"%d" % i).hexdigest()),  # noqa: S324
        N("user_id", "bigint", _id), N("user_agent", "text", lambda i: "Mozilla/5.0 (X11)"),
        P("visitor", "text", ip), N("created_at", "timestamptz", moment),
        N("expires_at", "timestamptz", moment)),
    "events": (
        N("id", "bigint PRIMARY KEY", _id), N("kind", "text", lambda i: "page_view"),
        N("payload", "jsonb", lambda i: '{"path": "/cart"}'),
        N("app_version", "text", lambda i: f"3.{i % 9}.{i % 4}"),
        N("occurred_at", "timestamptz", moment)),
    "dipendenti": (
        N("id", "bigint PRIMARY KEY", _id), P("nome", "text", lambda i: FIRST[i % 10]),
        P("cognome", "text", lambda i: LAST[i % 8]),
        P("codice_fiscale", "text", lambda i: f"RSSMRA{i:02d}A01H501Z"),
        P("indirizzo", "text", lambda i: STREETS[3]), P("cellulare", "text", phone),
        P("iban", "text", iban), N("stipendio", "numeric(10,2)", lambda i: 2000 + i),
        N("reparto", "text", lambda i: "vendite")),
    "devices": (
        N("id", "bigint PRIMARY KEY", _id),
        N("serial", "text", lambda i: f"8{_digest(i, 's') % 10**15:015d}"),
        P("owner_contact", "text", phone), N("model", "text", lambda i: "T-1000"),
        N("registered", "date", day)),
    "files": (
        N("id", "bigint PRIMARY KEY", _id), N("file_name", "text", lambda i: f"scan_{i}.pdf"),
        N("mime_type", "text", lambda i: "application/pdf"), N("size_bytes", "bigint", _id),
        N("checksum", "text", lambda i: hashlib.sha1(b"%d" % i).hexdigest()),  # noqa: S324
        N("uploaded_by", "bigint", _id)),
    "audit_log": (
        N("at", "timestamptz", moment), N("actor_id", "bigint", _id),
        N("action", "text", lambda i: "update"), P("remote_addr", "text", ip)),
}


def columns() -> list[tuple[str, Col]]:
    return [(table, col) for table, cols in TABLES.items() for col in cols]


def create(conn, schema: str = "public") -> None:
    """The labelled tables and their rows, in `schema` of the connected database."""
    for table, cols in TABLES.items():
        rel = sql.Identifier(schema, table)
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(rel, sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in cols)))
        with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(rel)) as copy:
            for i in range(1, ROWS + 1):
                copy.write_row([c.value(i) for c in cols])
    conn.execute("ANALYZE")
