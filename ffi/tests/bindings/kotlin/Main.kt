// The Kotlin binding tests on the JVM: a whole visit between two phones whose platform
// services are Kotlin (clock, location, AES key store, P-256 signer) against a real
// `tandem serve --demo`, and refusals arriving as typed exceptions naming their rule.
// Each refusal names the actor it stops (THREATS.md). Prints "N passed, N failed".
package tandem.tests

import java.io.File
import java.nio.file.Files
import tandem.CancelToken
import tandem.CoSignPurpose
import tandem.Completion
import tandem.FrameAssembler
import tandem.FrameProgress
import tandem.PaymentMethod
import tandem.PersonMet
import tandem.PhoneConfig
import tandem.ReceiptInput
import tandem.SerialState
import tandem.Server
import tandem.SyncProgress
import tandem.TandemException
import tandem.TandemPhone
import tandem.VisitAction
import tandem.VisitState

class Agent(dir: File, val clock: JvmClock) {
    val location = TestLocation()
    val keystore = AesKeyStore()
    val signer = P256Signer()
    val phone: TandemPhone = TandemPhone.open(
        PhoneConfig(dir.path, keystore, clock, location, signer))
    lateinit var agentId: String
    lateinit var deviceId: String
}

fun check(condition: Boolean, what: () -> String) {
    if (!condition) throw AssertionError(what())
}

inline fun <reified E : Throwable> refusedWith(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e", e)
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

/** The payer's signature from the signature pad: a small greyscale PNG. */
fun signaturePng(): ByteArray {
    val image = java.awt.image.BufferedImage(120, 40, java.awt.image.BufferedImage.TYPE_BYTE_GRAY)
    for (x in 0 until 120) for (y in 0 until 40) {
        image.raster.setSample(x, y, 0, if ((x + y) % 7 == 0) 0 else 255)
    }
    return java.io.ByteArrayOutputStream().also { javax.imageio.ImageIO.write(image, "png", it) }
        .toByteArray()
}

fun coSign(lead: Agent, partner: Agent, frames: List<String>): Pair<tandem.ChallengeView, Completion> {
    val review = partner.phone.reviewChallenge(frames)
    val reply = partner.phone.answerChallenge(review)
    return review.summary() to lead.phone.complete(reply)
}

class World(val server: DemoServer, val manager: Manager, root: File) {
    val clock = JvmClock()
    val link = Server(server.url)
    val lead = Agent(File(root, "lead"), clock)
    val partner = Agent(File(root, "partner"), clock)

    init {
        for ((agent, code) in listOf(lead to server.codes[0], partner to server.codes[1])) {
            val identity = agent.phone.enroll(link, code)
            agent.agentId = identity.agentId
            agent.deviceId = identity.deviceId
        }
        manager.issueReceiptNumbers(lead.deviceId)
    }

    /** The manager approves a visit to a demo case; both phones sync and stand near the
     *  approved address. */
    fun assignedVisit(caseIndex: Int): String {
        val caseId = manager.caseIds()[caseIndex]
        val visit = manager.approveVisit(caseId, listOf(lead.agentId, partner.agentId))
        for (agent in listOf(lead, partner)) {
            agent.phone.syncNow(link, null, null)
            check(agent.phone.visits().any { it.id == visit }) { "visit $visit not pulled" }
        }
        val address = lead.phone.caseOf(visit).addresses[0]
        lead.location.standAt(address.latE7, address.lonE7, northM = 10)
        partner.location.standAt(address.latE7, address.lonE7, northM = 15)
        return visit
    }
}

fun aFullVisitReachesTheServerAndIsAcknowledged(w: World) {
    val (lead, partner) = w.lead to w.partner
    val visit = w.assignedVisit(0)
    check(lead.phone.caseOf(visit).cardMasked.startsWith("**** **** **** ")) { "card not masked" }

    val (summary, checkedIn) = coSign(lead, partner, lead.phone.beginCheckIn(visit, null))
    check(summary.purpose == CoSignPurpose.CHECK_IN) { "purpose ${summary.purpose}" }
    check(checkedIn is Completion.CheckedIn) { "$checkedIn" }

    lead.phone.startAudio(visit, 16_000u)
    val chunk = ByteArray(640) { i -> if (i % 2 == 0) (i * 7).toByte() else 0 }
    repeat(100) { lead.phone.pushAudio(visit, chunk) }
    check(lead.phone.stopAudio(visit)?.length == 64) { "no closing audio segment" }

    val jpeg = File(System.getenv("TANDEM_FIXTURES"), "gps-DSCN0010.jpg").readBytes()
    check(lead.phone.capturePhoto(visit, jpeg, false).recorded.kind == "photo") { "photo" }
    lead.phone.record(visit, VisitAction.IdentityConfirmed(PersonMet.DEBTOR))
    check(lead.phone.addNote(visit, "债务人在家，同意下周还款。").kind == "note") { "note" }

    val receipt = ReceiptInput(PersonMet.DEBTOR, "张三", 50_000L, PaymentMethod.CASH, signaturePng())
    val (receiptSummary, issued) = coSign(lead, partner, lead.phone.beginReceipt(visit, receipt))
    check(receiptSummary.receipt?.amountFen == 50_000L) { "$receiptSummary" }
    check(issued is Completion.ReceiptIssued) { "$issued" }
    val entry = lead.phone.receipts().single()
    check(entry.state == SerialState.ISSUED) { "${entry.state}" }
    val png = lead.phone.receiptPng(visit, entry.serial)
    check(png.size > 8 && png[1] == 'P'.code.toByte()) { "receipt is not a PNG" }

    w.clock.advancedMs += 120_000
    check(coSign(lead, partner, lead.phone.beginCheckOut(visit)).second is Completion.CheckedOut) { "out" }
    val sealed = coSign(lead, partner, lead.phone.beginSeal(visit)).second
    check(sealed is Completion.Sealed && sealed.seal.visitId == visit) { "$sealed" }

    val cancel = CancelToken()
    cancel.cancel()
    refusedWith<TandemException.Cancelled> { lead.phone.push(w.link, null, cancel) }
    check(lead.phone.syncStatus().pending == 1u) { "the cancelled bundle is still pending" }

    val seen = mutableListOf<Pair<ULong, ULong>>()
    val progress = object : SyncProgress {
        override fun onProgress(done: ULong, total: ULong) {
            seen += done to total
        }
    }
    val round = lead.phone.syncNow(w.link, progress, CancelToken())
    check(round.pushed.acknowledged == 1u) { "$round" }
    check(seen.isNotEmpty() && seen.last().first == seen.last().second) { "progress $seen" }
    val status = lead.phone.syncStatus()
    check(status.pending == 0u && status.acknowledged == 1u) { "$status" }
    check(lead.phone.visit(visit).state == VisitState.PURGED) { "media not purged" }

    // Every platform service was called from Rust: the key store sealed and unsealed the
    // store keys, the P-256 key signed (enrolment, handshakes, seal), the clock was read.
    check(lead.keystore.sealed.get() >= 2 && lead.keystore.unsealed.get() >= 2) { "key store" }
    check(lead.signer.signatures.get() >= 5) { "signer: ${lead.signer.signatures.get()}" }
    check(w.clock.calls.get() > 0) { "clock" }
}

fun refusalsArriveAsTypedExceptionsNamingTheRule(w: World) {
    val (lead, partner) = w.lead to w.partner
    val visit = w.assignedVisit(1)

    // A lone agent: the lead's own phone cannot answer its challenge.
    val shown = lead.phone.beginCheckIn(visit, null)
    val alone = refusedWith<TandemException.Refused> { lead.phone.reviewChallenge(shown) }
    check(alone.rule == "V03") { "rule ${alone.rule}" }

    // An agent faking presence: no fix, then a mocked one.
    lead.location.fix = null
    val noFix = refusedWith<TandemException.Refused> { lead.phone.beginCheckIn(visit, null) }
    check(noFix.rule == "V05") { "rule ${noFix.rule}" }
    val address = lead.phone.caseOf(visit).addresses[0]
    lead.location.standAt(address.latE7, address.lonE7, mock = true)
    val mocked = refusedWith<TandemException.Refused> {
        coSign(lead, partner, lead.phone.beginCheckIn(visit, null))
    }
    check(mocked.rule == "V05") { "rule ${mocked.rule}" }

    // Anyone sending bad input.
    refusedWith<TandemException.Invalid> { lead.phone.visit("not-a-visit-id") }
    check(lead.phone.visit(visit).state == VisitState.ASSIGNED) { "a refusal wrote something" }
}

fun scannedFramesAssembleIntoTheirPayload(w: World) {
    val message = ByteArray(1500) { it.toByte() }
    val frames = qrFrames(message)
    val older = qrFrames(ByteArray(700) { 7 })
    val assembler = FrameAssembler()

    refusedWith<TandemException.Invalid> { assembler.push("https://example.com/not-ours") }
    refusedWith<TandemException.Invalid> { assembler.push(frames[0].replaceFirst("/1/3/", "/4/3/")) }
    check(assembler.push(older[0]) == FrameProgress(1u, 2u, null)) { "the first frame of an older code" }

    // The other screen now shows a newer message: it starts over, in any order.
    check(assembler.push(frames[2]) == FrameProgress(1u, 3u, null)) { "a newer message starts over" }
    assembler.push(frames[0])
    check(assembler.push(frames[0]).received == 2u) { "a repeat counts once" }
    val done = assembler.push(frames[1])
    check(done.received == 3u && done.total == 3u && done.payload.contentEquals(message)) { "$done" }

    // A whole message that is no handshake is refused by the phone as bad input.
    refusedWith<TandemException.Invalid> { w.partner.phone.reviewChallengePayload(message) }
    refusedWith<TandemException.Invalid> { w.lead.phone.completePayload(message) }
}

fun aKeyStoreThatFailsIsAPlatformError(w: World, root: File) {
    // A key store that throws (Keystore locked): the error crosses back as Platform.
    val broken = object : tandem.KeyStore {
        override fun seal(label: String, secret: ByteArray): ByteArray =
            throw TandemException.Platform("keystore locked")
        override fun unseal(label: String, sealed: ByteArray): ByteArray =
            throw TandemException.Platform("keystore locked")
    }
    val e = refusedWith<TandemException.Platform> {
        TandemPhone.open(PhoneConfig(File(root, "broken").path, broken, w.clock, TestLocation(), null))
    }
    check(e.toString().contains("keystore locked")) { "$e" }
}

fun main() {
    val root = Files.createTempDirectory("tandem-kotlin").toFile()
    val server = DemoServer(File(root, "server"))
    var passed = 0
    var failed = 0
    try {
        val world = World(server, Manager(server), root)
        val tests = listOf<Pair<String, () -> Unit>>(
            "a_full_visit_reaches_the_server_and_is_acknowledged" to
                { aFullVisitReachesTheServerAndIsAcknowledged(world) },
            "refusals_arrive_as_typed_exceptions_naming_the_rule" to
                { refusalsArriveAsTypedExceptionsNamingTheRule(world) },
            "scanned_frames_assemble_into_their_payload" to
                { scannedFramesAssembleIntoTheirPayload(world) },
            "a_key_store_that_fails_is_a_platform_error" to
                { aKeyStoreThatFailsIsAPlatformError(world, root) },
        )
        for ((name, test) in tests) {
            try {
                test()
                passed++
                println("PASS $name")
            } catch (e: Throwable) {
                failed++
                println("FAIL $name: $e")
                e.printStackTrace()
            }
        }
    } finally {
        server.stop()
        root.deleteRecursively()
    }
    println("kotlin: $passed passed, $failed failed")
    if (failed > 0 || passed == 0) kotlin.system.exitProcess(1)
}
