-- Who sees and changes which orders of the shop, for each kind of principal that reaches them.
-- The rules, exactly as `portcullis apply` applies them (the policies after the rows are in:
-- PostgreSQL refuses COPY FROM into a table with row-level security):
\ir ../rules/001-shop.sql
-- Principals to test with:
CREATE USER alice WITH PASSWORD 'test' ROLE readwrite;
CREATE USER bob WITH PASSWORD 'test' ROLE readwrite;
CREATE USER sam WITH PASSWORD 'test' ROLE readonly;
GRANT READ, WRITE ON DATABASE shop TO alice, bob;
GRANT support TO sam;
CREATE API KEY 'nightly' FOR billing;
-- The application's table, and rows to test with:
\c shop
CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, total numeric(8,2) NOT NULL, paid boolean NOT NULL);
COPY orders FROM stdin;
1	alice	12.00	t
2	alice	30.50	f
3	bob	7.25	f
4	carol	99.00	t
\.
\ir ../rules/002-order-policies.sql
-- A customer: her orders only, and only hers to write.
SET SESSION AUTHORIZATION alice;
SELECT id, total, paid FROM orders ORDER BY id;
INSERT INTO orders VALUES (5, 'bob', 1.00, false);
-- Support: every order, read-only.
SET SESSION AUTHORIZATION sam;
SELECT customer, count(*) AS orders, sum(total) AS total FROM orders GROUP BY customer ORDER BY customer;
UPDATE orders SET paid = true WHERE id = 3;
-- The billing job, through its API key: every order, which it marks paid.
SET SESSION AUTHORIZATION API KEY 'nightly' FOR billing;
SELECT id, customer, total FROM orders WHERE NOT paid ORDER BY id;
UPDATE orders SET paid = true WHERE id = 3 RETURNING id, customer, paid;
-- Support sees it paid; bob, too.
SET SESSION AUTHORIZATION sam;
SELECT id, customer, paid FROM orders WHERE customer = 'bob';
SET SESSION AUTHORIZATION bob;
SELECT id, total, paid FROM orders;
RESET SESSION AUTHORIZATION;
