// `tandem serve --demo` as a child process (its clock set to 10:00 in Shanghai so V04
// passes whenever the tests run), and the manager's console calls over HTTP. Shared by the
// binding tests and the Android shell's shared-module tests (mobile-shells/…/test-jvm.sh).
package tandem.tests

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.time.LocalTime
import java.time.ZoneId
import java.time.ZonedDateTime
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

const val DAY_MS = 86_400_000L
val SHANGHAI: ZoneId = ZoneId.of("Asia/Shanghai")

/** A demo server on 127.0.0.1 with its logins and the agents' enrolment codes. */
class DemoServer(dataDir: File) {
    val offsetMs: Long = run {
        val now = ZonedDateTime.now(SHANGHAI)
        now.toLocalDate().atTime(LocalTime.of(10, 0)).atZone(SHANGHAI).toInstant().toEpochMilli() -
            now.toInstant().toEpochMilli()
    }
    private val process: Process
    val passwords = mutableMapOf<String, String>()
    val codes = mutableListOf<String>()
    val url: String

    init {
        val bin = System.getenv("TANDEM_BIN") ?: error("TANDEM_BIN names the tandem binary")
        // `=`: the offset is negative after 10:00 in Shanghai, and "-1140000" alone reads as a flag.
        dataDir.mkdirs()
        val log = File(dataDir, "stderr.log")
        val builder = ProcessBuilder(bin, "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", dataDir.path,
            "--clock-offset-ms=$offsetMs")
            .redirectError(log)
        builder.environment().remove("DATABASE_URL")
        builder.environment()["RUST_LOG"] = "warn"
        process = builder.start()
        val lines = LinkedBlockingQueue<String>()
        Thread { process.inputStream.bufferedReader().forEachLine { lines.put(it) } }.apply { isDaemon = true }.start()
        var section = ""
        var found: String? = null
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60)
        while (found == null) {
            val left = deadline - System.nanoTime()
            check(left > 0 && (process.isAlive || lines.isNotEmpty())) {
                "tandem serve printed no address: " + log.readText().takeLast(2_000)
            }
            val line = lines.poll(minOf(left, TimeUnit.SECONDS.toNanos(1)), TimeUnit.NANOSECONDS) ?: continue
            val listening = Regex("tandem: listening on (http://\\S+)").find(line)
            when {
                line.startsWith("Console users") -> section = "users"
                line.startsWith("Agent enrollment codes") -> section = "agents"
                listening != null -> found = listening.groupValues[1]
                line.startsWith("  ") && section == "users" -> line.trim().split(Regex("\\s+")).let { passwords[it[0]] = it[2] }
                line.startsWith("  ") && section == "agents" -> codes += line.trim().split(Regex("\\s+")).last()
            }
        }
        url = found
        check(passwords.containsKey("manager") && codes.size >= 2) { "demo credentials missing" }
    }

    /** Now by the server's (shifted) clock. */
    fun nowMs(): Long = System.currentTimeMillis() + offsetMs

    fun stop() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}

/** The manager at the console. Answers are the server's own flat JSON: read by pattern. */
class Manager(private val server: DemoServer) {
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()
    private val token: String
    private val bankId: String

    init {
        val login = call("POST", "/v1/login", """{"login":"manager","password":"${server.passwords["manager"]}"}""", 200, null)
        token = field(login, "token")
        bankId = Regex("\"bank_ids\":\\[\"([^\"]+)\"").find(login)!!.groupValues[1]
    }

    private fun call(method: String, path: String, body: String?, expect: Int, auth: String? = token): String {
        val request = HttpRequest.newBuilder(URI.create(server.url + path))
            .timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json")
            .method(method, body?.let { HttpRequest.BodyPublishers.ofString(it) } ?: HttpRequest.BodyPublishers.noBody())
        if (auth != null) request.header("Authorization", "Bearer $auth")
        val answer = http.send(request.build(), HttpResponse.BodyHandlers.ofString())
        check(answer.statusCode() == expect) { "$method $path: ${answer.statusCode()} ${answer.body()}" }
        return answer.body()
    }

    private fun field(json: String, name: String): String =
        Regex("\"$name\":\"([^\"]+)\"").find(json)?.groupValues?.get(1) ?: throw AssertionError("no $name in $json")

    /** The bank's case ids, ordered by case reference. */
    fun caseIds(): List<String> {
        val body = call("GET", "/v1/banks/$bankId/cases", null, 200)
        // A case's own id comes first and is followed by its bank; its addresses' ids are not.
        val ids = Regex("\"id\":\"([^\"]+)\",\"bank_id\"").findAll(body).map { it.groupValues[1] }.toList()
        val refs = Regex("\"case_ref\":\"([^\"]+)\"").findAll(body).map { it.groupValues[1] }.toList()
        check(ids.size == refs.size) { "cases: $body" }
        return refs.zip(ids).sortedBy { it.first }.map { it.second }
    }

    /** Requests and approves a visit to [caseId] for [agents]; with [cashLimitFen] the bank
     *  authorises cash up to that amount (C01). Returns the visit id. */
    fun approveVisit(caseId: String, agents: List<String>, cashLimitFen: Long? = 100_000): String {
        val now = server.nowMs()
        val request = call("POST", "/v1/visit-requests",
            """{"case_id":"$caseId","wanted_from_ms":$now,"wanted_until_ms":${now + DAY_MS},"purpose":"外访"}""", 201)
        val team = agents.joinToString(",") { """{"agent_id":"$it"}""" }
        val cash = cashLimitFen?.let {
            ""","cash":{"limit_fen":$it,"currency":"CNY","designated_account":"6222 0210 0012 3456 789","methods":["cash"]}"""
        } ?: ""
        val approved = call("POST", "/v1/visit-requests/${field(request, "id")}/approve",
            """{"team":[$team],"valid_from_ms":${now - 60_000},"valid_until_ms":${now + 7 * DAY_MS},
               "letter_number":"WT-1","letter_valid_until_ms":${now + 30 * DAY_MS}$cash}""", 201)
        return field(approved, "visit_id")
    }

    /** Issues receipt numbers to a phone. */
    fun issueReceiptNumbers(deviceId: String) {
        call("POST", "/v1/devices/$deviceId/serial-ranges", """{"count":5}""", 201)
    }
}
