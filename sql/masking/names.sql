-- Fake names: a realistic first name, last name or "First Last", picked by the keyed
-- PRF from the built-in lists below (an international mix, ASCII so that the file
-- installs in a database of any encoding).
--
-- The lists are IMMUTABLE functions with a constant body: inlined into the callers,
-- then folded by the planner to one constant array in the plan of the trigger's
-- expression, which plpgsql caches per session. No table is read per row.
--
-- Changing a list changes the masked names of existing values (which the `stable`
-- guarantee forbids without a re-copy): only add lists under new names.
--
-- Index: 32 PRF bits modulo the list length (bias below 10^-7). PRF tags: f, l, n.

CREATE OR REPLACE FUNCTION repl.mask_first_names() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ARRAY[
        'Aaliyah', 'Aaron', 'Abdul', 'Abigail', 'Ada', 'Adam', 'Adebayo', 'Adrian',
        'Adriana', 'Agnieszka', 'Ahmed', 'Aiden', 'Aiko', 'Aisha', 'Akira', 'Alan',
        'Albert', 'Alejandro', 'Aleksander', 'Alessandro', 'Alexa', 'Alexander',
        'Alexandra', 'Alfredo', 'Ali', 'Alice', 'Alina', 'Amadou', 'Amanda', 'Amara',
        'Amelia', 'Amir', 'Ana', 'Anders', 'Andre', 'Andrea', 'Andrei', 'Andrew', 'Angela',
        'Anika', 'Anil', 'Anita', 'Anna', 'Anne', 'Antoine', 'Antonio', 'Anya', 'Arjun',
        'Armando', 'Arturo', 'Astrid', 'Aurora', 'Ava', 'Ayesha', 'Aylin', 'Ayumi',
        'Beatriz', 'Ben', 'Benjamin', 'Bianca', 'Bilal', 'Birgit', 'Bjorn', 'Blessing',
        'Bogdan', 'Bongani', 'Boris', 'Brian', 'Bruno', 'Camila', 'Carla', 'Carlos',
        'Carmen', 'Caroline', 'Catalina', 'Catherine', 'Cecilia', 'Celine', 'Charlotte',
        'Chen', 'Chiara', 'Chidi', 'Chioma', 'Chloe', 'Christian', 'Christina', 'Claire',
        'Clara', 'Cristina', 'Dalia', 'Daniel', 'Daniela', 'Dario', 'Darius', 'David',
        'Deepak', 'Diana', 'Diego', 'Dmitri', 'Dominik', 'Eitan', 'Elena', 'Elias', 'Elif',
        'Elijah', 'Elisa', 'Elizabeth', 'Ella', 'Emeka', 'Emil', 'Emily', 'Emma', 'Emre',
        'Enrique', 'Eric', 'Erik', 'Esther', 'Ethan', 'Eva', 'Ewa', 'Fabian', 'Farah',
        'Fatima', 'Felipe', 'Felix', 'Fernanda', 'Fernando', 'Finn', 'Florian', 'Francesca',
        'Francisco', 'Freya', 'Gabriel', 'Gabriela', 'Georg', 'George', 'Gintaras',
        'Giovanni', 'Goran', 'Grace', 'Greta', 'Guillermo', 'Hamza', 'Hana', 'Hannah',
        'Hans', 'Haruto', 'Hassan', 'Hector', 'Helena', 'Henrik', 'Henry', 'Hiroshi',
        'Hugo', 'Hyun', 'Ibrahim', 'Ines', 'Ingeborg', 'Ingrid', 'Ioana', 'Irina', 'Isaac',
        'Isabel', 'Isabella', 'Ivan', 'Jack', 'Jacob', 'Jakub', 'James', 'Jan', 'Jana',
        'Jasmin', 'Javier', 'Jessica', 'Jin', 'Joao', 'Johan', 'John', 'Jonas', 'Jorge',
        'Jose', 'Joseph', 'Julia', 'Julian', 'Juliana', 'Kai', 'Kamala', 'Karin', 'Karl',
        'Kasia', 'Katarina', 'Kenji', 'Kevin', 'Khalid', 'Kofi', 'Kwame', 'Laila', 'Lars',
        'Laszlo', 'Laura', 'Layla', 'Lea', 'Leila', 'Lena', 'Leo', 'Leon', 'Liam', 'Lina',
        'Linnea', 'Lorenzo', 'Lucas', 'Lucia', 'Lucie', 'Luis', 'Luka', 'Madison', 'Magnus',
        'Maja', 'Malik', 'Manuel', 'Marco', 'Maria', 'Mariana', 'Marie', 'Marina', 'Mario',
        'Marta', 'Martin', 'Mateo', 'Mateus', 'Matteo', 'Maya', 'Mehdi', 'Mehmet', 'Mei',
        'Mia', 'Michael', 'Miguel', 'Mila', 'Milan', 'Ming', 'Mohammed', 'Nadia', 'Naomi',
        'Natalia', 'Nia', 'Nicolas', 'Nikhil', 'Nikolai', 'Nina', 'Nkechi', 'Noah', 'Noor',
        'Nora', 'Nour', 'Oksana', 'Ole', 'Olga', 'Oliver', 'Olivia', 'Omar', 'Oscar',
        'Pablo', 'Paolo', 'Patricia', 'Paula', 'Pedro', 'Petra', 'Pierre', 'Pietro',
        'Priya', 'Quentin', 'Radek', 'Rafael', 'Rahul', 'Rania', 'Ravi', 'Rebecca',
        'Ricardo', 'Rita', 'Roberto', 'Rosa', 'Ruth', 'Ryo', 'Sakura', 'Samuel', 'Sanjay',
        'Sara', 'Sebastian', 'Selin', 'Sergio', 'Shreya', 'Siddharth', 'Simone', 'Sofia',
        'Sophie', 'Stefan', 'Sven', 'Tanvi', 'Tariq', 'Teresa', 'Thabo', 'Thomas', 'Tomas',
        'Tomasz', 'Uma', 'Ursula', 'Valentina', 'Valeria', 'Vera', 'Victor', 'Viktor',
        'Vivek', 'Wanjiru', 'Wei', 'Wiktoria', 'Wojciech', 'Xavier', 'Ximena', 'Yara',
        'Yasmin', 'Yerlan', 'Youssef', 'Yuki', 'Yusuf', 'Zainab', 'Zara', 'Zeynep', 'Zhen',
        'Zoe'
    ];

CREATE OR REPLACE FUNCTION repl.mask_last_names() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ARRAY[
        'Abe', 'Achterberg', 'Acosta', 'Adeyemi', 'Agarwal', 'Aguilar', 'Ahmed', 'Akhtar',
        'Alexander', 'Ali', 'Alvarez', 'Andersen', 'Anderson', 'Andersson', 'Araujo',
        'Bailey', 'Baker', 'Bakker', 'Banerjee', 'Barbosa', 'Bauer', 'Becker', 'Benali',
        'Berg', 'Bergstrom', 'Bernard', 'Bhatt', 'Bianchi', 'Bjork', 'Blanc', 'Bondarenko',
        'Bose', 'Bouchard', 'Brown', 'Bruno', 'Caruso', 'Carvalho', 'Castillo', 'Castro',
        'Celik', 'Chatterjee', 'Chaudhry', 'Chen', 'Cheng', 'Choi', 'Chopra', 'Clarke',
        'Cohen', 'Colombo', 'Costa', 'Costello', 'Cruz', 'Dahl', 'Dang', 'Das', 'Davies',
        'Davis', 'Dias', 'Diaz', 'Dimitrov', 'Dlamini', 'Dubois', 'Dupont', 'Engel',
        'Eriksson', 'Esposito', 'Evans', 'Eze', 'Farah', 'Farouk', 'Fernandes', 'Fernandez',
        'Ferrari', 'Fischer', 'Fontaine', 'Francois', 'Fujita', 'Gallagher', 'Garcia',
        'Georgiou', 'Gomez', 'Goncalves', 'Gonzalez', 'Grant', 'Grimaldi', 'Gupta',
        'Gutierrez', 'Haas', 'Haddad', 'Hakimi', 'Hale', 'Halvorsen', 'Hansen', 'Hashimoto',
        'Hernandez', 'Hoffmann', 'Horvath', 'Huang', 'Hughes', 'Hussain', 'Ibrahim',
        'Ikeda', 'Ito', 'Ivanov', 'Ivanova', 'Iyer', 'Jackson', 'Jansen', 'Janssen',
        'Jaramillo', 'Jensen', 'Jimenez', 'Johansson', 'Johnson', 'Jones', 'Jovanovic',
        'Kaplan', 'Karlsson', 'Kato', 'Kaya', 'Keller', 'Khan', 'Kim', 'Klein', 'Koch',
        'Kovacs', 'Kowalczyk', 'Kowalski', 'Kozlov', 'Kruger', 'Kruse', 'Kumar', 'Lachance',
        'Lambert', 'Lang', 'Larsen', 'Laurent', 'Lee', 'Lehmann', 'Leroy', 'Li', 'Lim',
        'Lindberg', 'Lindgren', 'Lindqvist', 'Liu', 'Lopez', 'Lozano', 'Lund', 'Ma',
        'Mahlangu', 'Mahmoud', 'Mansour', 'Marchetti', 'Martin', 'Martinez', 'Martins',
        'Mazur', 'Mbeki', 'Mehta', 'Meier', 'Mendes', 'Mendoza', 'Meyer', 'Miller',
        'Mishra', 'Morales', 'Moreau', 'Moreno', 'Morris', 'Moyo', 'Muller', 'Murphy',
        'Mwangi', 'Nair', 'Nakamura', 'Nasser', 'Navarro', 'Ndlovu', 'Nguyen', 'Nielsen',
        'Nikolaidis', 'Nilsson', 'Novak', 'Novotny', 'Nowak', 'Nowicki', 'O''Connor', 'Obi',
        'Ogunleye', 'Okafor', 'Okonkwo', 'Oliveira', 'Olsen', 'Ortega', 'Ortiz', 'Osei',
        'Oyelaran', 'Ozturk', 'Pacheco', 'Papadopoulos', 'Park', 'Patel', 'Pavlov',
        'Pellegrini', 'Pereira', 'Perez', 'Petersen', 'Petrov', 'Petrova', 'Pham', 'Pillai',
        'Pires', 'Popescu', 'Popov', 'Quinn', 'Quintero', 'Rahman', 'Ramirez', 'Ramos',
        'Rao', 'Rasmussen', 'Reddy', 'Ribeiro', 'Ricci', 'Richter', 'Rinaldi', 'Rivera',
        'Roberts', 'Robinson', 'Rocha', 'Rodrigues', 'Rodriguez', 'Romano', 'Romero',
        'Rossi', 'Roux', 'Russo', 'Sahin', 'Saito', 'Salazar', 'Salo', 'Sanchez',
        'Sandoval', 'Santos', 'Sato', 'Schafer', 'Schmidt', 'Schneider', 'Schulz',
        'Schwarz', 'Sepulveda', 'Shapiro', 'Sharma', 'Sheikh', 'Silva', 'Simon', 'Singh',
        'Smith', 'Sokolov', 'Soto', 'Sousa', 'Stewart', 'Sullivan', 'Suzuki', 'Svensson',
        'Szabo', 'Takahashi', 'Tanaka', 'Tavares', 'Taylor', 'Tembo', 'Thomas', 'Thompson',
        'Torres', 'Toth', 'Tran', 'Ueda', 'Ulrich', 'Uzor', 'Valdez', 'Varga', 'Vargas',
        'Vasquez', 'Vega', 'Verma', 'Vidal', 'Villanueva', 'Virtanen', 'Visser', 'Vogel',
        'Volkov', 'Wagner', 'Walker', 'Wang', 'Watanabe', 'Weber', 'Weiss', 'White',
        'Williams', 'Wilson', 'Wojcik', 'Wolf', 'Wong', 'Wright', 'Wu', 'Xu', 'Yadav',
        'Yamada', 'Yamamoto', 'Yang', 'Yilmaz', 'Yoshida', 'Young', 'Yusuf', 'Zapata',
        'Zhang', 'Zhao', 'Zhou', 'Zielinski', 'Zimmermann'
    ];

-- Lookups go through name[]: its elements have a fixed width, so subscripting is
-- O(1), where a text[] is walked element by element (0.3 us for these lists). The
-- cast of the constant folds with it. Every name fits a `name` (63 bytes).

-- fake_first_name, fake_last_name: one name, from 32 bits of the PRF of the tagged value
-- ('' stays '', as under every strategy).
CREATE OR REPLACE FUNCTION repl.mask_fake_first_name(value text, ikey bytea, okey bytea)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value = '' THEN '' ELSE (repl.mask_first_names()::name[])[1 + (
        ('x' || pg_catalog.left(pg_catalog.encode(repl.prf_text('f' || value, ikey), 'hex'), 8))
        ::bit(32)::int8 % pg_catalog.cardinality(repl.mask_first_names())::int8)::int4]::text
    END;

CREATE OR REPLACE FUNCTION repl.mask_fake_last_name(value text, ikey bytea, okey bytea)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN value = '' THEN '' ELSE (repl.mask_last_names()::name[])[1 + (
        ('x' || pg_catalog.left(pg_catalog.encode(repl.prf_text('l' || value, ikey), 'hex'), 8))
        ::bit(32)::int8 % pg_catalog.cardinality(repl.mask_last_names())::int8)::int4]::text
    END;

-- fake_name: "First Last", both picked from one digest (bits 0-31 and 32-63), so one
-- sha256() per value. plpgsql, as the digest is used twice: a LANGUAGE sql body would
-- have the inliner copy the PRF call into both places, doubling the hashing.
CREATE OR REPLACE FUNCTION repl.mask_fake_name(value text, ikey bytea, okey bytea) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $body$
DECLARE
    digest text;
BEGIN
    IF value = '' THEN
        RETURN '';
    END IF;
    digest := pg_catalog.encode(repl.prf_text('n' || value, ikey), 'hex');
    RETURN (repl.mask_first_names()::name[])[1 + (
               ('x' || pg_catalog.substr(digest, 1, 8))::bit(32)::int8
               % pg_catalog.cardinality(repl.mask_first_names())::int8)::int4]::text
        || ' '
        || (repl.mask_last_names()::name[])[1 + (
               ('x' || pg_catalog.substr(digest, 9, 8))::bit(32)::int8
               % pg_catalog.cardinality(repl.mask_last_names())::int8)::int4]::text;
END
$body$;
