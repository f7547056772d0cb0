import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;

/**
 * pgJDBC (Debian's libpostgresql-jdbc-java) with default settings on a data plane: the
 * tables DatabaseMetaData.getTables lists, then a query. Prints one line per table
 * ("table schema.name TYPE"), then "count N"; an error goes to stderr with its SQLSTATE.
 * Arguments: port, user, password, database.
 */
public class PgJdbcMetadata {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/" + args[3];
    try (Connection c = DriverManager.getConnection(url, args[1], args[2])) {
      DatabaseMetaData md = c.getMetaData();
      try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
        while (rs.next()) System.out.println("table " + rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + " " + rs.getString("TABLE_TYPE"));
      }
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM orders")) {
        rs.next();
        System.out.println("count " + rs.getLong(1));
      }
    } catch (java.sql.SQLException e) {
      System.err.println(e.getSQLState() + " " + e.getMessage());
      System.exit(1);
    }
  }
}
