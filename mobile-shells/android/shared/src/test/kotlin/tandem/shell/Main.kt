// Runs the shared module's tests: the unit tests, then the flows on a demo server.
package tandem.shell

import java.io.File
import java.nio.file.Files
import kotlin.system.exitProcess
import tandem.tests.DemoServer

fun main() {
    val root = Files.createTempDirectory("tandem-shell").toFile()
    var ok: Boolean
    val server = DemoServer(File(root, "server"))
    try {
        ok = runTests(unitTests + flowTests(Team(server, root)))
    } finally {
        server.stop()
        root.deleteRecursively()
    }
    if (!ok) exitProcess(1)
}
