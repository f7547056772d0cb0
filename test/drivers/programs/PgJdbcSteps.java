import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * pgJDBC (Debian's libpostgresql-jdbc-java) against portcullis with default settings: a
 * prepared statement switches to binary results after its fifth execution (prepareThreshold).
 * Prints one JSON line per step.
 */
public class PgJdbcSteps {
  interface Body {
    Object run() throws Exception;
  }

  static String url;
  static String password;

  public static void main(String[] args) throws Exception {
    url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/default";
    password = args[1];
    List<String> shows = parseStringArray(args[2]);

    step("wrong_password", () -> {
      DriverManager.getConnection(url, "admin", "not the password").close();
      return "logged in";
    });

    Connection[] conn = new Connection[1];
    if (!step("connect", () -> {
      conn[0] = DriverManager.getConnection(url, "admin", password);
      return scalar(conn[0], "SELECT current_user");
    })) return;
    Connection c = conn[0];

    step("show_auth", () -> {
      List<Object> rows = new ArrayList<>();
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SHOW AUTH")) {
        while (rs.next()) rows.add(List.of(rs.getString(1), String.valueOf(rs.getString(2))));
      }
      return rows;
    });

    step("create_user", () -> {
      try (PreparedStatement ps = c.prepareStatement("CREATE USER drv_jdbc WITH PASSWORD ? CONNECTION LIMIT ? VALID UNTIL ?")) {
        ps.setString(1, "drv pw");
        ps.setInt(2, 7);
        ps.setObject(3, OffsetDateTime.of(2099, 1, 2, 3, 4, 5, 678_000_000, ZoneOffset.UTC));
        ps.executeUpdate();
        return "ok";
      }
    });

    // SHOW USERS prepared: the sixth run and after come back in binary.
    step("user_row", () -> {
      Map<String, Object> last = null;
      try (PreparedStatement ps = c.prepareStatement("SHOW USERS")) {
        for (int i = 0; i < 10; i++) {
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              if (!rs.getString("name").equals("drv_jdbc")) continue;
              Map<String, Object> row = new LinkedHashMap<>();
              row.put("id", rs.getLong("id"));
              row.put("login", rs.getBoolean("login"));
              row.put("valid_until", rs.getObject("valid_until", OffsetDateTime.class).toString());
              row.put("connection_limit", rs.getInt("connection_limit"));
              if (last != null && !last.equals(row)) throw new IllegalStateException("run " + i + " differs: " + row + " vs " + last);
              last = row;
            }
          }
        }
      }
      return last;
    });

    step("select_params", () -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT ?::int4 AS i4, ?::int8 AS i8, ?::bool AS b, ?::text AS t")) {
        Object last = null;
        for (int i = 0; i < 10; i++) {
          ps.setInt(1, 42);
          ps.setLong(2, 1L << 40);
          ps.setBoolean(3, true);
          ps.setString(4, "h\u00e9llo");
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            last = List.of(rs.getInt(1), rs.getLong(2), rs.getBoolean(3), rs.getString(4));
          }
        }
        return last;
      }
    });

    for (String sql : shows) {
      step("show:" + sql, () -> {
        List<Integer> counts = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(sql)) {
          for (int i = 0; i < 10; i++) {
            int n = 0;
            try (ResultSet rs = ps.executeQuery()) {
              ResultSetMetaData md = rs.getMetaData();
              while (rs.next()) {
                for (int col = 1; col <= md.getColumnCount(); col++) rs.getObject(col);
                n++;
              }
            }
            counts.add(n);
          }
        }
        return counts;
      });
    }

    step("metadata", () -> {
      DatabaseMetaData md = c.getMetaData();
      try (ResultSet rs = md.getTables(null, null, "%", null)) {
        return "answered";
      }
    });

    step("after_metadata", () -> scalar(c, "SELECT current_user"));

    step("drop_user", () -> {
      try (Statement s = c.createStatement()) {
        s.executeUpdate("DROP USER drv_jdbc");
        return "ok";
      }
    });
    c.close();
  }

  static Object scalar(Connection c, String sql) throws SQLException {
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
      rs.next();
      return rs.getObject(1);
    }
  }

  static boolean step(String name, Body body) {
    try {
      Object v = body.run();
      System.out.println("{\"step\":" + json(name) + ",\"ok\":true,\"value\":" + json(v) + "}");
      return true;
    } catch (Exception e) {
      String state = e instanceof SQLException ? ((SQLException) e).getSQLState() : null;
      System.out.println("{\"step\":" + json(name) + ",\"ok\":false,\"sqlstate\":" + json(state) + ",\"error\":" + json(e.toString()) + "}");
      return false;
    } finally {
      System.out.flush();
    }
  }

  static String json(Object v) {
    if (v == null) return "null";
    if (v instanceof Number || v instanceof Boolean) return v.toString();
    if (v instanceof Map) {
      StringBuilder b = new StringBuilder("{");
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        if (b.length() > 1) b.append(',');
        b.append(json(String.valueOf(e.getKey()))).append(':').append(json(e.getValue()));
      }
      return b.append('}').toString();
    }
    if (v instanceof List) {
      StringBuilder b = new StringBuilder("[");
      for (Object o : (List<?>) v) {
        if (b.length() > 1) b.append(',');
        b.append(json(o));
      }
      return b.append(']').toString();
    }
    StringBuilder b = new StringBuilder("\"");
    for (char ch : v.toString().toCharArray()) {
      if (ch == '"' || ch == '\\') b.append('\\').append(ch);
      else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
      else b.append(ch);
    }
    return b.append('"').toString();
  }

  /** The statement list, a JSON array of plain strings (no escapes in them). */
  static List<String> parseStringArray(String text) {
    List<String> out = new ArrayList<>();
    int i = text.indexOf('"');
    while (i >= 0) {
      int end = text.indexOf('"', i + 1);
      out.add(text.substring(i + 1, end));
      i = text.indexOf('"', end + 1);
    }
    return out;
  }
}
