-- One database per service (identity is created by POSTGRES_DB).
CREATE DATABASE tenancy OWNER threshold;
CREATE DATABASE notifier OWNER threshold;
CREATE DATABASE web OWNER threshold;
