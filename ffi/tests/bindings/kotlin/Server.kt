// `tandem serve --demo` as a child process, and the manager's calls over HTTP.
package tandem.tests

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.time.LocalTime
import java.time.ZoneId
import java.time.ZoneOffset
import java.time.ZonedDateTime
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

const val DAY_MS = 86_400_000L

/** Milliseconds to add to now so the server's clock reads 10:00 in Shanghai today (V04). */
fun shanghaiTenOClockOffsetMs(): Long {
    val now = ZonedDateTime.now(ZoneOffset.UTC)
    val today = now.withZoneSameInstant(ZoneId.of("Asia/Shanghai")).toLocalDate()
    val target = today.atTime(LocalTime.of(10, 0)).atZone(ZoneId.of("Asia/Shanghai"))
    return target.toInstant().toEpochMilli() - now.toInstant().toEpochMilli()
}

class DemoServer(dataDir: File) {
    val offsetMs = shanghaiTenOClockOffsetMs()
    private val process: Process
    val passwords = mutableMapOf<String, String>()
    val codes = mutableListOf<String>()
    val url: String

    init {
        val builder = ProcessBuilder(System.getenv("TANDEM_BIN"), "serve", "--demo",
            "--listen", "127.0.0.1:0", "--data-dir", dataDir.path,
            "--clock-offset-ms=$offsetMs") // one argument: a negative offset is no flag
            .redirectError(ProcessBuilder.Redirect.DISCARD)
        builder.environment().remove("DATABASE_URL")
        builder.environment()["RUST_LOG"] = "warn"
        process = builder.start()
        val lines = LinkedBlockingQueue<String>()
        Thread {
            process.inputStream.bufferedReader().forEachLine { lines.put(it) }
        }.apply { isDaemon = true }.start()
        var section = ""
        var found: String? = null
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60)
        while (found == null) {
            val left = deadline - System.nanoTime()
            check(left > 0 && process.isAlive) { "tandem serve did not start within 60 s" }
            val line = lines.poll(minOf(left, 1_000_000_000L), TimeUnit.NANOSECONDS) ?: continue
            val listening = Regex("tandem: listening on (http://\\S+)").find(line)
            when {
                line.startsWith("Console users") -> section = "users"
                line.startsWith("Agent enrollment codes") -> section = "agents"
                listening != null -> found = listening.groupValues[1]
                line.startsWith("  ") && section == "users" -> {
                    val parts = line.trim().split(Regex("\\s+"))
                    passwords[parts[0]] = parts[2]
                }
                line.startsWith("  ") && section == "agents" ->
                    codes += line.trim().split(Regex("\\s+")).last()
            }
        }
        url = found
        check(passwords.containsKey("manager") && codes.size >= 2) { "demo credentials" }
    }

    fun nowMs(): Long = System.currentTimeMillis() + offsetMs

    fun stop() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}

/** The manager at the web console. JSON fields are read with small patterns: the answers
 *  are the server's own, flat where they are read. */
class Manager(private val server: DemoServer) {
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()
    private val token: String
    private val bankId: String

    init {
        val login = call("POST", "/v1/login",
            """{"login":"manager","password":"${server.passwords["manager"]}"}""", 200, null)
        token = field(login, "token")
        bankId = Regex("\"bank_ids\":\\[\"([^\"]+)\"").find(login)!!.groupValues[1]
    }

    private fun call(method: String, path: String, body: String?, expect: Int, auth: String?): String {
        val request = HttpRequest.newBuilder(URI.create(server.url + path))
            .timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json")
            .method(method, body?.let { HttpRequest.BodyPublishers.ofString(it) }
                ?: HttpRequest.BodyPublishers.noBody())
        if (auth != null) request.header("Authorization", "Bearer $auth")
        val answer = http.send(request.build(), HttpResponse.BodyHandlers.ofString())
        check(answer.statusCode() == expect) { "$method $path: ${answer.statusCode()} ${answer.body()}" }
        return answer.body()
    }

    private fun field(json: String, name: String): String =
        Regex("\"$name\":\"([^\"]+)\"").find(json)?.groupValues?.get(1)
            ?: throw AssertionError("no $name in $json")

    /** Case ids, by case reference. */
    fun caseIds(): List<String> {
        val body = call("GET", "/v1/banks/$bankId/cases", null, 200, token)
        val ids = Regex("\"id\":\"([^\"]+)\"").findAll(body).map { it.groupValues[1] }.toList()
        val refs = Regex("\"case_ref\":\"([^\"]+)\"").findAll(body).map { it.groupValues[1] }.toList()
        check(ids.size == refs.size) { "cases: $body" }
        return refs.zip(ids).sortedBy { it.first }.map { it.second }
    }

    fun approveVisit(caseId: String, agents: List<String>): String {
        val now = server.nowMs()
        val request = call("POST", "/v1/visit-requests",
            """{"case_id":"$caseId","wanted_from_ms":$now,"wanted_until_ms":${now + DAY_MS},"purpose":"外访"}""",
            201, token)
        val team = agents.joinToString(",") { """{"agent_id":"$it"}""" }
        val approved = call("POST", "/v1/visit-requests/${field(request, "id")}/approve",
            """{"team":[$team],"valid_from_ms":${now - 60_000},"valid_until_ms":${now + 7 * DAY_MS},
               "letter_number":"WT-1","letter_valid_until_ms":${now + 30 * DAY_MS},
               "cash":{"limit_fen":100000,"currency":"CNY","designated_account":"6222 0210 0012 3456 789","methods":["cash"]}}""",
            201, token)
        return field(approved, "visit_id")
    }

    fun issueReceiptNumbers(deviceId: String) {
        call("POST", "/v1/devices/$deviceId/serial-ranges", """{"count":5}""", 201, token)
    }
}
