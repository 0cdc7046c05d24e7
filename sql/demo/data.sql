-- Deterministic sample data for sql/demo/schema.sql: 20,000 users, 60,000 events and
-- 30,000 orders, the same on every run and every server (no random()).
--
-- pick(seed, n) turns a text seed such as 'first-name:42' into an integer in [0, n)
-- through MD5, so each row's values depend only on its row number. Change the counts
-- in the generate_series calls to get a bigger or smaller data set.
-- All email addresses use reserved example domains; card numbers are made up.

CREATE FUNCTION pg_temp.pick(seed text, n integer) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT (('x' || substr(md5(seed), 1, 8))::bit(32)::bigint % n)::integer $$;

CREATE TEMPORARY TABLE countries (code, dial, currency, weight) AS VALUES
    ('US', '1', 'USD', 30), ('GB', '44', 'GBP', 12), ('DE', '49', 'EUR', 12),
    ('FR', '33', 'EUR', 10), ('NL', '31', 'EUR', 5), ('ES', '34', 'EUR', 5),
    ('IT', '39', 'EUR', 5), ('SE', '46', 'SEK', 3), ('PL', '48', 'PLN', 3),
    ('CA', '1', 'CAD', 5), ('BR', '55', 'BRL', 4), ('IN', '91', 'INR', 3),
    ('JP', '81', 'JPY', 2), ('AU', '61', 'AUD', 1);

-- One slot per unit of weight: picking a slot picks a country with that probability.
CREATE TEMPORARY TABLE country_slots AS
SELECT row_number() OVER (ORDER BY code, n) - 1 AS slot, code, dial, currency
  FROM countries, generate_series(1, weight) AS n;

-- users: signed up one every ~100 minutes since 2021-01-01.
INSERT INTO public.users (id, name, email, phone, birth_date, country, plan, created_at)
SELECT i,
       first_name || ' ' || last_name,
       replace(CASE pg_temp.pick('email-style:' || i, 3)
                    WHEN 0 THEN lower(first_name || '.' || last_name)
                    WHEN 1 THEN lower(left(first_name, 1) || last_name)
                    ELSE lower(first_name || '_' || left(last_name, 1))
               END, ' ', '') || i || '@' || domain,
       CASE WHEN pg_temp.pick('phone-null:' || i, 10) > 0 THEN
            '+' || c.dial || ' ' || (200 + pg_temp.pick('phone-area:' || i, 800)) || ' '
                || lpad(pg_temp.pick('phone-number:' || i, 10000000)::text, 7, '0')
       END,
       date '1950-01-01' + pg_temp.pick('birth:' || i, 365 * 55),
       c.code,
       CASE WHEN plan_roll < 70 THEN 'free' WHEN plan_roll < 92 THEN 'pro' ELSE 'team' END,
       timestamptz '2021-01-01 00:00:00+00'
           + make_interval(mins => i * 100 + pg_temp.pick('signup:' || i, 100))
  FROM generate_series(1, 20000) AS i
 CROSS JOIN LATERAL (SELECT
       (ARRAY['Olivia', 'Liam', 'Emma', 'Noah', 'Amelia', 'Oliver', 'Sophia', 'Elijah',
              'Mia', 'Lucas', 'Isabella', 'Mateo', 'Charlotte', 'Leon', 'Ava', 'Hugo',
              'Lea', 'Jonas', 'Chloe', 'Louis', 'Emilia', 'Finn', 'Priya', 'Arjun',
              'Aisha', 'Omar', 'Yuki', 'Haruto', 'Sofia', 'Diego', 'Camila', 'Lukas',
              'Julia', 'Jakub', 'Zofia', 'Erik', 'Astrid', 'Marco', 'Giulia', 'Ines',
              'Pablo', 'Lucia', 'Daan', 'Sanne', 'Ethan', 'Grace', 'Samuel', 'Nora'])
           [1 + pg_temp.pick('first-name:' || i, 48)] AS first_name,
       (ARRAY['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller',
              'Davis', 'Martin', 'Bernard', 'Dubois', 'Moreau', 'Muller', 'Schmidt',
              'Schneider', 'Fischer', 'Weber', 'Rossi', 'Russo', 'Ferrari', 'Esposito',
              'Fernandez', 'Lopez', 'Martinez', 'Sanchez', 'de Jong', 'Jansen', 'de Vries',
              'Nowak', 'Kowalski', 'Andersson', 'Johansson', 'Silva', 'Santos', 'Oliveira',
              'Sharma', 'Patel', 'Singh', 'Sato', 'Suzuki', 'Takahashi', 'Wilson', 'Taylor',
              'Clarke', 'Walker', 'Wright', 'Thompson', 'Roberts'])
           [1 + pg_temp.pick('last-name:' || i, 48)] AS last_name,
       (ARRAY['example.com', 'example.org', 'example.net', 'mail.example', 'inbox.example'])
           [1 + pg_temp.pick('domain:' || i, 5)] AS domain,
       pg_temp.pick('country:' || i, (SELECT count(*)::int FROM country_slots)) AS slot,
       pg_temp.pick('plan:' || i, 100) AS plan_roll
 ) AS r
  JOIN country_slots AS c ON c.slot = r.slot;

-- events: one every 8 minutes through 2024, each by a user who had signed up by then.
INSERT INTO public.events (id, user_id, kind, occurred_at, properties)
SELECT i,
       1 + pg_temp.pick('event-user:' || i, signed_up),
       kind,
       occurred_at,
       CASE WHEN kind = 'debug'
            THEN jsonb_build_object('trace_id', md5('trace:' || i), 'level', 'debug')
            ELSE jsonb_build_object(
                'path', (ARRAY['/', '/pricing', '/products', '/cart', '/checkout', '/account',
                               '/search', '/help'])[1 + pg_temp.pick('event-path:' || i, 8)],
                'device', (ARRAY['desktop', 'mobile', 'mobile', 'tablet'])
                              [1 + pg_temp.pick('event-device:' || i, 4)])
       END
  FROM generate_series(1, 60000) AS i
 CROSS JOIN LATERAL (SELECT
       timestamptz '2024-01-01 00:00:00+00'
           + make_interval(secs => i * 480 + pg_temp.pick('event-time:' || i, 480))
           AS occurred_at,
       (ARRAY['page_view', 'page_view', 'page_view', 'page_view', 'click', 'click', 'click',
              'login', 'search', 'purchase', 'debug', 'debug'])
           [1 + pg_temp.pick('event-kind:' || i, 12)] AS kind
 ) AS e
 CROSS JOIN LATERAL (SELECT least(20000, floor(extract(epoch FROM
       e.occurred_at - timestamptz '2021-01-01 00:00:00+00') / 6000)::int - 1) AS signed_up) AS u;

-- orders: one every 16 minutes through 2024, paid in the buyer's currency with the
-- buyer's card.
INSERT INTO public.orders (id, user_id, amount, currency, status, card_number, created_at)
SELECT i,
       o.user_id,
       (5 + pg_temp.pick('amount:' || i, 295))
           + (ARRAY[0.99, 0.50, 0.00])[1 + pg_temp.pick('cents:' || i, 3)],
       c.currency,
       (ARRAY['paid', 'paid', 'paid', 'shipped', 'shipped', 'shipped', 'shipped', 'pending',
              'refunded', 'cancelled'])[1 + pg_temp.pick('status:' || i, 10)],
       (ARRAY['4539', '4556', '4916', '4024', '5105', '5425', '5555', '2221'])
           [1 + pg_temp.pick('card-bin:' || o.user_id, 8)]
           || ' ' || lpad(pg_temp.pick('card-a:' || o.user_id, 10000)::text, 4, '0')
           || ' ' || lpad(pg_temp.pick('card-b:' || o.user_id, 10000)::text, 4, '0')
           || ' ' || lpad(pg_temp.pick('card-c:' || o.user_id, 10000)::text, 4, '0'),
       o.created_at
  FROM generate_series(1, 30000) AS i
 CROSS JOIN LATERAL (SELECT
       timestamptz '2024-01-01 00:00:00+00'
           + make_interval(secs => i * 960 + pg_temp.pick('order-time:' || i, 960))
           AS created_at
 ) AS t
 CROSS JOIN LATERAL (SELECT t.created_at, 1 + pg_temp.pick('order-user:' || i,
       least(20000, floor(extract(epoch FROM
           t.created_at - timestamptz '2021-01-01 00:00:00+00') / 6000)::int - 1)) AS user_id
 ) AS o
  JOIN public.users AS u ON u.id = o.user_id
  JOIN countries AS c ON c.code = u.country;

-- New rows inserted by hand continue after the generated ids.
SELECT setval(pg_get_serial_sequence('public.users', 'id'), max(id)) FROM public.users;
SELECT setval(pg_get_serial_sequence('public.events', 'id'), max(id)) FROM public.events;
SELECT setval(pg_get_serial_sequence('public.orders', 'id'), max(id)) FROM public.orders;

-- Row estimates for `repl setup --wait`'s progress bars.
ANALYZE public.users, public.events, public.orders;
