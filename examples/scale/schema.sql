-- examples/scale/schema.sql: a small shop, loaded as the app role into shop_kg
-- on the primary (the standby gets it by replication).
CREATE TABLE customers (
  id int PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE items (
  id int PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  name text NOT NULL,
  category int NOT NULL,
  price numeric(10, 2) NOT NULL,
  stock int NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_category_id ON items (category, id);
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers,
  item_id int NOT NULL REFERENCES items,
  qty int NOT NULL CHECK (qty > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_item ON orders (item_id);
CREATE INDEX orders_customer ON orders (customer_id);

INSERT INTO customers (id, email, name)
  SELECT g, 'customer' || g || '@example.com', 'Customer ' || g FROM generate_series(1, 2000) g;
INSERT INTO items (id, sku, name, category, price, stock)
  SELECT g, 'SKU-' || lpad(g::text, 6, '0'), 'Item ' || g, g % 50, 1 + (g * 7919 % 10000) / 100.0, 1000000
  FROM generate_series(1, 5000) g;
INSERT INTO orders (customer_id, item_id, qty)
  SELECT 1 + g % 2000, 1 + g * 31 % 5000, 1 + g % 3 FROM generate_series(1, 3000) g;
ANALYZE customers, items, orders;
