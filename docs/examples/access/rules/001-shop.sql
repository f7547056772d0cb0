-- The shop: its database, the support team's role, and the billing job's account.
CREATE DATABASE shop;
CREATE ROLE support;
GRANT READ ON DATABASE shop TO support;
CREATE SERVICE ACCOUNT billing FOR DATABASE shop ROLE readwrite;
