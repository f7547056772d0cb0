-- Who sees and changes which orders.
CREATE RLS POLICY own_orders ON shop.orders FOR ALL USING (customer = $auth.username);
CREATE RLS POLICY support_reads ON shop.orders FOR READ USING ($auth.roles CONTAINS 'support');
CREATE RLS POLICY billing ON shop.orders FOR ALL USING ($auth.username = 'billing');
