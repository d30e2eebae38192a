// The servlet-container upstream of tests/differential.rs: embedded Tomcat 10.1 (Debian's
// libtomcat10-embed-java and libtomcat10-java) with one servlet mapped to "/*", answering
// every request with one JSON line saying what Tomcat's routing layer made of it.
//
// Why getServletPath() + getPathInfo(): that is the path Tomcat maps to servlets and filters,
// and what Spring MVC, Jersey and security filters route on. Tomcat derives it from the raw
// target by dropping ";params" from every segment, percent-decoding, and resolving "." and
// ".." segments, which is exactly where "/v1/reports/..;/admin" turns into "/v1/admin".
// The connector keeps Tomcat's defaults (encoded "/" refused, backslash refused, ...): an
// app deployed on Tomcat gets those.
//
// Usage: java -cp tomcat10-embed-core.jar:tomcat10-annotations-api.jar:. EchoTomcat PORT BASEDIR

import java.io.IOException;
import java.nio.charset.StandardCharsets;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

import org.apache.catalina.Context;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.startup.Tomcat;

public class EchoTomcat extends HttpServlet {
    private static final long serialVersionUID = 1L;

    // The headers through which common frameworks let a client replace the method.
    private static final String[] OVERRIDE_HEADERS = {
        "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"
    };

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String path = req.getServletPath() + (req.getPathInfo() == null ? "" : req.getPathInfo());
        String raw = req.getRequestURI()
            + (req.getQueryString() == null ? "" : "?" + req.getQueryString());
        String override = null;
        for (String h : OVERRIDE_HEADERS) {
            if (override == null) {
                override = req.getHeader(h);
            }
        }
        if (override == null) {
            // Spring's HiddenHttpMethodFilter reads the "_method" parameter (on POST);
            // whether an app honours it is not something a gate in front can know.
            override = req.getParameter("_method");
        }
        String body = "{\"server\":\"tomcat\",\"method\":" + json(req.getMethod())
            + ",\"path\":" + json(path)
            + ",\"raw\":" + json(raw)
            + ",\"override\":" + json(override)
            + ",\"role\":" + json(req.getHeader("X-Keysmith-Role")) + "}\n";
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        resp.setStatus(200);
        resp.setContentType("application/json");
        resp.setContentLength(bytes.length);
        resp.getOutputStream().write(bytes);
    }

    // A JSON string (or null) with everything outside printable ASCII escaped.
    private static String json(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || c > 0x7e) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        Tomcat tomcat = new Tomcat();
        tomcat.setBaseDir(args[1]);
        Connector connector = new Connector();
        connector.setPort(Integer.parseInt(args[0]));
        connector.setProperty("address", "127.0.0.1");
        tomcat.setConnector(connector);
        Context ctx = tomcat.addContext("", null);
        Tomcat.addServlet(ctx, "echo", new EchoTomcat()).addMapping("/*");
        tomcat.start();
        tomcat.getServer().await();
    }
}
