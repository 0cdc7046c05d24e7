"""Which columns look personal, and how a masked target masks them: the detection of
`repl init`, and of the suggestions `check` makes for unclassified columns.

A column is judged by the words of its name (English, German, French, Spanish, Italian,
Portuguese, Dutch), gated by its type (an `email_verified boolean` holds no address), by
its type alone (inet), and, when `repl init` sampled it, by the shape of its values
(value_shapes.py), which then decides the kind: a `contact` column of e-mail addresses
is masked as e-mail addresses. A `Finding` names the kind and the rule, never a value.

The strategy of each kind is one small table, `MASKS`, checked against the column's type
with `masking.type_problem`; `null` fits every type.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from .config import MaskSpec, TableConfig
from .masking import type_problem
from .model import SourceColumn
from .names import QualifiedName
from .value_shapes import Verdict
from .yaml_text import flow, scalar

KINDS = {
    "secret": "a password, token or other secret",
    "email": "an e-mail address",
    "ip": "an IP address",
    "card": "a payment card number",
    "bank_account": "a bank account number",
    "national_id": "a national or tax ID",
    "phone": "a phone number",
    "birth_date": "a date of birth",
    "postcode": "a postcode",
    "address": "a postal address",
    "city": "a city",
    "username": "a user name or login",
    "first_name": "a first name",
    "last_name": "a last name",
    "person_name": "a person's name",
    "free_text": "free text (anything people write)",
}

# The strategy of each kind on a masked target: the first that fits the column's type.
# Keyed strategies keep distinct values distinct (joins and unique keys keep working).
MASKS: dict[str, tuple[Any, ...]] = {
    "secret": ("null",),
    "email": ("email",),
    "ip": ("hash",),
    "card": ("digits",),
    "bank_account": ("digits",),
    "national_id": ("digits",),
    "phone": ("digits",),
    "birth_date": ({"date_trunc": "year"}, "redact"),
    "postcode": ({"partial": {"keep_first": 2}},),
    "address": ("redact",),
    "city": ("redact",),
    "username": ("hash",),
    "first_name": ("fake_first_name",),
    "last_name": ("fake_last_name",),
    "person_name": ("fake_name",),
    "free_text": ("redact",),
}
FALLBACK = "null"  # fits any type

# Type categories (pg_type.typcategory) a kind can be stored in: S text-like, A array,
# N numeric, D date/time, I network address, U user-defined (json, bytea, uuid).
_TEXT = frozenset("SA")
_GATES = {
    "secret": frozenset("SAU"), "ip": frozenset("SAI"), "birth_date": frozenset("SD"),
    "card": frozenset("SAN"), "bank_account": frozenset("SAN"),
    "national_id": frozenset("SAN"), "phone": frozenset("SAN"), "free_text": frozenset("SAU"),
}


@dataclass(frozen=True)
class Rule:
    """A kind, found when a name has one of `words`, both words of a pair, or one of
    `inside` within its words written together (firstname, e_mail)."""

    kind: str
    words: frozenset[str] = frozenset()
    pairs: tuple[tuple[str, str], ...] = ()
    inside: tuple[str, ...] = ()


def _w(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _p(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(pair.split("+")) for pair in text.split())  # type: ignore[misc]


# First match wins: a password_reset_email is a secret, an ip_address is no postal address.
RULES = (
    Rule("secret", _w("password passwords passwd pwd passwort kennwort wachtwoord contrasena "
                      "senha secret secrets token tokens salt apikey otp totp cvv cvc pin "
                      "credential credentials passphrase"),
         _p("api+key private+key secret+key access+key session+key encryption+key "
            "signing+key mot+passe"), ("password", "passwd", "apikey")),
    Rule("email", _w("email emails mail mails courriel correo"), (), ("email",)),
    Rule("ip", _w("ip ipv ipaddr ipaddress"),
         _p("remote+addr remote+address client+addr")),
    Rule("card", _w("creditcard cardnumber ccnumber ccnum pan kreditkarte"),
         _p("card+number card+no card+nr card+num credit+card debit+card cc+number "
            "cc+num numero+tarjeta numero+carte"), ("cardnumber", "creditcard")),
    Rule("bank_account", _w("iban kontonummer bankaccount"),
         _p("bank+account account+number account+no account+nr routing+number sort+code "
            "numero+cuenta numero+conta"), ("iban", "accountnumber", "bankaccount")),
    Rule("national_id", _w("ssn nino nir passport passeport pasaporte passaporto paspoort dni "
                           "nie nif cpf pesel bsn steuernummer steuerid codicefiscale "
                           "personnummer aadhaar curp rut personalausweis"),
         _p("social+security national+id national+number national+insurance tax+id "
            "tax+number id+card identity+card identity+number driver+license "
            "driver+licence driving+licence driving+license codice+fiscale"),
         ("socialsecurity", "taxid", "nationalid", "passport")),
    Rule("phone", _w("phone phones telephone tel telefon telefono telefone telefoon fax "
                     "cellphone handy celular cellulare movil mobiel whatsapp"),
         _p("mobile+number mobile+phone mobile+no mobil+nummer cell+phone cell+number"),
         ("phone", "telefon", "telephon")),
    Rule("birth_date", _w("birth birthday birthdate dob geburtsdatum geburtstag geboren "
                          "naissance nacimiento nascimento nascita geboortedatum born"),
         (), ("birth", "geburt")),
    Rule("postcode", _w("zip zipcode postcode postal plz cep postleitzahl"),
         _p("post+code codigo+postal code+postal"),
         ("postcode", "zipcode", "postalcode", "codepostal", "postleitzahl")),
    Rule("address", _w("address addresses addr street strasse adresse anschrift direccion "
                       "calle indirizzo endereco rua straat adres hausnummer"),
         _p("house+number"), ("address", "street", "strasse")),
    Rule("city", _w("city town ciudad ville stadt ort wohnort citta cidade woonplaats "
                    "localidad")),
    Rule("username", _w("username login nickname screenname pseudo pseudonym"),
         _p("user+name screen+name nick+name login+name")),
)
# Alone, these name a phone: `mobile`, `cell`; `mobile_app_version` is no phone.
PHONE_ALONE = frozenset({"mobile", "mobil", "cell", "portable"})

FIRST_NAMES = _w("firstname givenname forename vorname prenom voornaam middlename nombre")
LAST_NAMES = _w("lastname surname familyname nachname apellido apellidos cognome achternaam "
                "sobrenome nazwisko maidenname")
FIRST_WORDS = _w("first given fore middle christian")
LAST_WORDS = _w("last family sur maiden")
NAME_WORDS = _w("name nom naam nome namen")
# <someone>_name names a person; product_name, file_name and company_name do not.
PERSON_WORDS = _w("full customer client contact patient employee person owner holder "
                  "cardholder recipient sender billing shipping member guest parent spouse "
                  "emergency beneficiary applicant candidate student passenger driver "
                  "author legal real maiden")
# A bare `name` (or display_name) is a person's in a table of people.
PLAIN_QUALIFIERS = _w("display preferred")
PEOPLE = _w("user customer client person people employee contact patient member student "
            "author subscriber profile lead staff driver guest applicant candidate account "
            "owner teacher doctor passenger recipient visitor participant attendee "
            "volunteer buyer worker "
            # de, fr, es, it, pt, nl
            "kunde kunden benutzer nutzer mitglied mitarbeiter angestellte person personen "
            "patient patienten utilisateur personne salarie employe adherent etudiant "
            "usuario cliente empleado paciente alumno estudiante socio persona "
            "utente dipendente dipendenti impiegato studente "
            "funcionario aluno pessoa "
            "gebruiker klant medewerker werknemer leerling lid leden")
FREE_TEXT = _w("note notes comment comments bio biography description remark remarks memo "
               "message messages about notiz notizen bemerkung bemerkungen kommentar "
               "beschreibung commentaire commentaires remarque nota notas comentario "
               "comentarios observaciones opmerking opmerkingen descripcion descricao "
               "observacao osservazioni")


@dataclass(frozen=True)
class Finding:
    """Why a column looks personal: its kind and the rule that found it, never a value."""

    kind: str
    rule: str
    by_values: bool = False

    def describe(self) -> str:
        return f"{KINDS[self.kind]}, {self.rule}"


def words(name: str) -> tuple[str, ...]:
    """The words of a name, lower case, accents and digits dropped: `firstName`,
    `first_name` and `Prénom2` give ('first', 'name') and ('prenom',)."""
    text = unicodedata.normalize("NFKD", name.replace("ß", "ss"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    return tuple(w for w in re.split(r"[^a-z]+", text.lower()) if w)


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def people_table(relation: QualifiedName) -> bool:
    return any(_singular(w) in PEOPLE or w in PEOPLE for w in words(relation.name))


def _matches(rule: Rule, found: tuple[str, ...]) -> bool:
    have = set(found)
    joined = "".join(found)
    return bool(have & rule.words) or any(a in have and b in have for a, b in rule.pairs) \
        or any(part in joined for part in rule.inside)


def _person_kind(relation: QualifiedName, found: tuple[str, ...]) -> str | None:
    have = set(found)
    joined = "".join(found)
    if have & FIRST_NAMES or any(n in joined for n in ("firstname", "givenname")):
        return "first_name"
    if have & LAST_NAMES or any(n in joined for n in ("lastname", "surname", "familyname")):
        return "last_name"
    if not have & NAME_WORDS:
        return None
    others = have - NAME_WORDS
    if others & FIRST_WORDS:
        return "first_name"
    if others & LAST_WORDS:
        return "last_name"
    if others & PERSON_WORDS:
        return "person_name"
    if others <= PLAIN_QUALIFIERS and people_table(relation):
        return "person_name"
    return None


def _kind_by_name(relation: QualifiedName, name: str) -> str | None:
    found = words(name)
    for rule in RULES:
        if _matches(rule, found):
            return rule.kind
    if len(found) == 1 and found[0] in PHONE_ALONE:
        return "phone"
    if kind := _person_kind(relation, found):
        return kind
    return "free_text" if set(found) & FREE_TEXT else None


def by_name(relation: QualifiedName, column: SourceColumn) -> Finding | None:
    """What a column's name and type say, without reading its values."""
    if column.type_name == "inet":
        return Finding("ip", "by its type (inet)")
    kind = _kind_by_name(relation, column.name)
    if kind is None or column.type_category not in _GATES.get(kind, _TEXT):
        return None
    table = ", in a table of people" if kind == "person_name" and \
        not set(words(column.name)) - NAME_WORDS - PLAIN_QUALIFIERS else ""
    return Finding(kind, f"by its name{table}")


def judge(relation: QualifiedName, column: SourceColumn, seen: Verdict | None
          ) -> Finding | None:
    """Name, type and sampled values together. The values decide the kind, so that the
    mask fits what is stored (digits would leave an e-mail address as it is); a name that
    says secret stays a secret (null hides anything)."""
    named = by_name(relation, column)
    if seen is None or (named is not None and named.kind == "secret"):
        return named
    if column.type_category not in _GATES.get(seen.kind, _TEXT):
        return named
    if named is not None and named.kind == seen.kind:
        return Finding(seen.kind, f"{named.rule} and its values: {seen.rule}")
    rule = f"by its values: {seen.rule}" + (
        "" if named is None else f" (its name suggests {KINDS[named.kind]})")
    return Finding(seen.kind, rule, by_values=True)


def _spec(value: Any) -> MaskSpec:
    """The strategy as the config reads it, parameters' defaults filled in."""
    return TableConfig.model_validate({"columns": ["c"], "mask": {"c": value}}).mask["c"]


_SPECS = {kind: tuple((value, _spec(value)) for value in values)
          for kind, values in MASKS.items()}
_FALLBACK_SPEC = _spec(FALLBACK)


def mask_for(finding: Finding, column: SourceColumn) -> tuple[Any, MaskSpec]:
    """The strategy for a personal column (as written in repl.yaml, and as parsed): the
    first of its kind's that fits the column's type, else null."""
    for value, spec in _SPECS[finding.kind]:
        if type_problem(spec, column) is None:
            return value, spec
    return FALLBACK, _FALLBACK_SPEC


def suggestion(relation: QualifiedName, column: SourceColumn) -> str:
    """What check says about an unclassified column, from its name and type only (check
    reads catalogs, never production's rows)."""
    finding = by_name(relation, column)
    if finding is None:
        return "nothing in its name or type looks personal: list it in columns, or exclude it"
    value, _ = mask_for(finding, column)
    return (f"it looks like {finding.describe()}: exclude it, or list it in columns with "
            f"mask: {{{scalar(column.name)}: {flow(value)}}}")
