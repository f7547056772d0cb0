import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * pgJDBC (Debian's libpostgresql-jdbc-java) with default settings on a data plane:
 * DatabaseMetaData's getTables, getColumns and getPrimaryKeys on `orders`, then prepared
 * statements (server-side once pgJDBC's prepareThreshold is passed) that read and write rows
 * under the policy `owner = $auth.username`. Prints one JSON line per step, as the Python
 * programs do. Arguments: port, user, password, database.
 */
public class PgJdbcPlane {
  interface Step {
    Object run() throws Exception;
  }

  static String json(Object v) {
    if (v == null) return "null";
    if (v instanceof Number || v instanceof Boolean) return v.toString();
    if (v instanceof List) {
      List<String> parts = new ArrayList<>();
      for (Object o : (List<?>) v) parts.add(json(o));
      return "[" + String.join(",", parts) + "]";
    }
    StringBuilder b = new StringBuilder("\"");
    for (char ch : v.toString().toCharArray()) {
      if (ch == '"' || ch == '\\') b.append('\\').append(ch);
      else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
      else b.append(ch);
    }
    return b.append('"').toString();
  }

  static boolean run(String name, Step s) {
    try {
      System.out.println("{\"step\":" + json(name) + ",\"ok\":true,\"value\":" + json(s.run()) + "}");
      return true;
    } catch (Exception e) {
      String state = e instanceof SQLException ? ((SQLException) e).getSQLState() : null;
      System.out.println("{\"step\":" + json(name) + ",\"ok\":false,\"sqlstate\":" + json(state) + ",\"error\":" + json(e.toString()) + "}");
      return false;
    }
  }

  static List<Object> rows(Connection c) throws SQLException {
    List<Object> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT owner, status, data, amount FROM orders WHERE amount > ? ORDER BY id")) {
      ps.setInt(1, 0);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) out.add(List.of(rs.getString(1), rs.getString(2), rs.getString(3), rs.getBigDecimal(4).toPlainString()));
      }
    }
    return out;
  }

  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/" + args[3];
    String user = args[1];
    Connection[] conn = new Connection[1];
    if (!run("connect", () -> {
      conn[0] = DriverManager.getConnection(url, user, args[2]);
      return conn[0].getMetaData().getDatabaseProductName();
    })) return;
    Connection c = conn[0];
    DatabaseMetaData md = c.getMetaData();

    run("getTables", () -> {
      List<Object> out = new ArrayList<>();
      try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
        while (rs.next()) out.add(List.of(rs.getString("TABLE_SCHEM"), rs.getString("TABLE_NAME"), rs.getString("TABLE_TYPE")));
      }
      return out;
    });
    run("getColumns", () -> {
      List<Object> out = new ArrayList<>();
      try (ResultSet rs = md.getColumns(null, "public", "orders", "%")) {
        while (rs.next()) {
          out.add(List.of(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"), rs.getInt("DATA_TYPE"), rs.getString("IS_NULLABLE"), rs.getString("IS_AUTOINCREMENT")));
        }
      }
      return out;
    });
    run("getPrimaryKeys", () -> {
      List<Object> out = new ArrayList<>();
      try (ResultSet rs = md.getPrimaryKeys(null, "public", "orders")) {
        while (rs.next()) out.add(List.of(rs.getString("COLUMN_NAME"), rs.getInt("KEY_SEQ"), rs.getString("PK_NAME")));
      }
      return out;
    });

    run("read", () -> rows(c));

    // Six inserts: pgJDBC turns a statement into a named server-side one at its fifth use.
    run("insert_own", () -> {
      int n = 0;
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO orders (owner, status, data, amount) VALUES (?, ?::order_status, ?::jsonb, ?)")) {
        for (int i = 0; i < 6; i++) {
          ps.setString(1, user);
          ps.setString(2, "paid");
          ps.setString(3, "{\"via\": \"pgjdbc\", \"i\": " + i + "}");
          ps.setBigDecimal(4, new java.math.BigDecimal("2"));
          n += ps.executeUpdate();
        }
      }
      return n;
    });
    run("insert_other", () -> {
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO orders (owner, status, data) VALUES (?, ?::order_status, ?::jsonb)")) {
        ps.setString(1, "carol");
        ps.setString(2, "new");
        ps.setString(3, "{}");
        return ps.executeUpdate();
      }
    });
    run("update_all", () -> {
      try (PreparedStatement ps = c.prepareStatement("UPDATE orders SET amount = amount + ?")) {
        ps.setInt(1, 1);
        return ps.executeUpdate();
      }
    });
    run("delete_extra", () -> {
      try (PreparedStatement ps = c.prepareStatement("DELETE FROM orders WHERE (data->>'i')::int > ?")) {
        ps.setInt(1, 0);
        return ps.executeUpdate();
      }
    });
    run("read_after", () -> rows(c));
    c.close();
  }
}
