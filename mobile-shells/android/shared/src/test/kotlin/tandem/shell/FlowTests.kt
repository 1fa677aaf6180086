// The shell's screens and flows on two real phones (real core through the generated
// bindings) against a real `tandem serve --demo`: enrolment, the visit list and visit
// screen, the handshake state machines moving QR texts between the phones, capture, a
// receipt, the seal and the upload. Each refusal names the actor it stops (THREATS.md).
package tandem.shell

import java.io.File
import tandem.CoSignPurpose
import tandem.PhoneConfig
import tandem.Server
import tandem.TandemPhone
import tandem.VisitState
import tandem.tests.AesKeyStore
import tandem.tests.DemoServer
import tandem.tests.JvmClock
import tandem.tests.Manager
import tandem.tests.SHANGHAI
import tandem.tests.TestLocation

/** One agent's phone and the app on it. */
class AgentPhone(dir: File, server: Server, val clock: JvmClock) {
    val location = TestLocation()
    val signer = DerP256Signer()
    val phone = TandemPhone.open(PhoneConfig(dir.path, AesKeyStore(), clock, location, signer))
    val app = AppFlow(phone, server, SHANGHAI, clock::wallMs)
}

/** Two enrolled phones, a manager, and the visits approved for them. */
class Team(val server: DemoServer, root: File) {
    val clock = JvmClock()
    val link = Server(server.url)
    val manager = Manager(server)
    val lead = AgentPhone(File(root, "lead"), link, clock)
    val partner = AgentPhone(File(root, "partner"), link, clock)

    /** Approves a visit to the demo case at [caseIndex]; both phones sync and stand at its
     *  first address, 10 and 15 m north of it. */
    fun assignedVisit(caseIndex: Int, cashLimitFen: Long?): String {
        val team = listOf(lead, partner).map { it.app.identity!!.agentId }
        val visit = manager.approveVisit(manager.caseIds()[caseIndex], team, cashLimitFen)
        for (agent in listOf(lead, partner)) {
            val synced = agent.app.sync(null, null) as Screen.Sync
            expectEqual(null, synced.error, "sync")
        }
        val address = lead.phone.caseOf(visit).addresses[0]
        lead.location.standAt(address.latE7, address.lonE7, northM = 10)
        partner.location.standAt(address.latE7, address.lonE7, northM = 15)
        return visit
    }

    /** Moves codes between the two screens the way two cameras would: the lead's frames in
     *  reverse order with an unrelated QR code in view, then the partner's reply. Returns
     *  the partner's summary and the lead's screen afterwards. */
    fun coSign(lead: AgentPhone, partner: AgentPhone, started: Screen): Pair<ChallengeSummaryText, Screen> {
        val showing = (started as? Screen.Lead)?.step as? LeadStep.ShowingChallenge
            ?: throw AssertionError("the lead shows no challenge: $started")
        partner.app.beginPartner()
        partner.app.partnerScanned("https://example.com/menu")
        var partnerScreen: Screen = partner.app.screen
        for (frame in showing.code.frames.reversed()) partnerScreen = partner.app.partnerScanned(frame)
        val reviewing = (partnerScreen as Screen.Partner).step as? PartnerStep.Reviewing
            ?: throw AssertionError("partner: $partnerScreen")
        val reply = (partner.app.partnerAgree() as Screen.Partner).step as? PartnerStep.ShowingReply
            ?: throw AssertionError("partner did not sign: ${partner.app.screen}")
        var leadScreen: Screen = lead.app.screen
        for (i in reply.code.frames.indices) leadScreen = lead.app.leadScanned(reply.code.frameAt(i * reply.code.periodMs))
        return reviewing.summary to leadScreen
    }
}

fun enrolmentLeadsFromSignInToTheVisitList(team: Team) {
    for ((agent, code) in listOf(team.lead to team.server.codes[0], team.partner to team.server.codes[1])) {
        expect(agent.app.launch() is Screen.SignIn) { "a new phone opens on sign-in" }
        // Anyone sending bad input: a wrong code is the server's refusal, shown, not a crash.
        val wrong = (agent.app.signIn("NOT-A-CODE") as Screen.SignIn).error
        expect(wrong is ShellError.Offline && wrong.status in 400..499) { "$wrong" }
        val visits = agent.app.signIn(code) as? Screen.Visits ?: throw AssertionError("${agent.app.screen}")
        expectEqual(null, visits.error, "after enrolment")
        expect(visits.list.emptyText != null) { "no visit yet" }
        expect(agent.app.launch() is Screen.Visits) { "an enrolled phone opens on its visits" }
    }
    team.manager.issueReceiptNumbers(team.lead.app.identity!!.deviceId)
}

fun aLoneAgentCannotCoSignTheirOwnCheckIn(team: Team) {
    val visit = team.assignedVisit(1, cashLimitFen = null)
    val lead = team.lead
    // A lone agent: the lead's phone scans its own challenge.
    val started = lead.app.beginLead(visit) { it.checkIn(visit) } as Screen.Lead
    val frames = (started.step as LeadStep.ShowingChallenge).code.frames
    lead.app.beginPartner()
    var screen: Screen = lead.app.screen
    for (f in frames) screen = lead.app.partnerScanned(f)
    val failed = (screen as Screen.Partner).step as? PartnerStep.Failed ?: throw AssertionError("$screen")
    expectEqual("V03", (failed.error as ShellError.Refused).rule, "rule")
    expect(failed.error.display().startsWith("V03 blocked: ")) { failed.error.display() }

    // An agent faking presence: a mocked position is refused at check-in (V05).
    val address = lead.phone.caseOf(visit).addresses[0]
    lead.location.standAt(address.latE7, address.lonE7, mock = true)
    val mocked = team.coSignRefusal(visit)
    expectEqual("V05", mocked.rule, "rule")
    expectEqual(VisitState.ASSIGNED, lead.phone.visit(visit).state, "nothing was recorded")
}

/** Starts a check-in on the lead and lets the partner review it: the refusal core gives. */
fun Team.coSignRefusal(visit: String): ShellError.Refused {
    val started = lead.app.beginLead(visit) { it.checkIn(visit) } as Screen.Lead
    (started.step as? LeadStep.Failed)?.let { return it.error as ShellError.Refused }
    val frames = (started.step as LeadStep.ShowingChallenge).code.frames
    partner.app.beginPartner()
    var screen: Screen = partner.app.screen
    for (f in frames) screen = partner.app.partnerScanned(f)
    val failed = (screen as Screen.Partner).step as? PartnerStep.Failed ?: throw AssertionError("$screen")
    return failed.error as ShellError.Refused
}

fun aVisitWithoutCashAuthorisationRefusesAReceipt(team: Team) {
    val visit = team.lead.phone.visits().single { it.state == VisitState.ASSIGNED }.id
    team.lead.location.standAt(team.lead.phone.caseOf(visit).addresses[0].latE7, team.lead.phone.caseOf(visit).addresses[0].lonE7, 10)
    val (_, checkedIn) = team.coSign(team.lead, team.partner, team.lead.app.beginLead(visit) { it.checkIn(visit) })
    expect(checkedIn is Screen.Visit) { "$checkedIn" }
    // An agent who pockets cash: no cash authorisation on the approval, no receipt (C01).
    val form = ReceiptForm(payerName = "李四", amountText = "200", signaturePng = signaturePng())
    val refused = team.lead.app.beginLead(visit) { it.receipt(visit, form) } as Screen.Lead
    val error = (refused.step as? LeadStep.Failed)?.error as? ShellError.Refused ?: throw AssertionError("${refused.step}")
    expectEqual("C01", error.rule, "rule")
}

fun aWholeVisitRunsThroughTheScreensAndIsUploaded(team: Team) {
    val (lead, partner) = team.lead to team.partner
    val visit = team.assignedVisit(0, cashLimitFen = 100_000)

    val list = lead.app.showVisits() as Screen.Visits
    val row = list.list.rows.first { it.visitId == visit }
    expectEqual("Assigned", row.state, "row state")
    expectEqual(NextStep.CHECK_IN, row.next, "row next")
    expectEqual(lead.phone.caseOf(visit).caseRef, row.title, "row title")
    val assigned = (lead.app.openVisit(visit) as Screen.Visit).detail
    expect(assigned.card.startsWith("**** **** **** ") && assigned.card.count { it.isDigit() } == 4) { assigned.card }
    expectEqual(Format.yuan(lead.phone.caseOf(visit).outstandingFen), assigned.outstanding, "outstanding")
    expect(assigned.outstanding.startsWith("¥")) { assigned.outstanding }
    expectEqual("Active", assigned.caseStatus, "case status")
    expectEqual(NextStep.CHECK_IN, assigned.next, "next step")

    val (checkInSummary, afterCheckIn) = team.coSign(lead, partner, lead.app.beginLead(visit) { it.checkIn(visit) })
    expectEqual("Check-in", checkInSummary.title, "summary title")
    expect(checkInSummary.lines.any { it == "Phones 5 m apart" || it.matches(Regex("Phones [4-6] m apart")) }) { "${checkInSummary.lines}" }
    val checkedIn = afterCheckIn as? Screen.Visit ?: throw AssertionError("$afterCheckIn")
    expectEqual("Checked in together", checkedIn.notice, "notice")
    expectEqual(NextStep.CAPTURE, checkedIn.detail.next, "next after check-in")

    val audio = AudioSession(lead.phone, visit, 16_000)
    expect(audio.start() is Answer.Done) { "${audio.error}" }
    val buffer = ShortArray(1_600) { i -> ((i * 37) % 2_000 - 1_000).toShort() }
    repeat(20) { expect(audio.push(buffer, buffer.size) is Answer.Done) { "${audio.error}" } }
    expect(audio.stop().valueOrNull() != null) { "the open segment closes" }
    expectEqual("Stopped 2 s · 1 segment", audio.status(), "audio status")

    val jpeg = File(System.getenv("TANDEM_FIXTURES"), "gps-DSCN0010.jpg").readBytes()
    val photo = lead.app.addPhoto(visit, jpeg, interior = false) as Screen.Visit
    expect(photo.notice?.startsWith("Photo kept") == true) { "${photo.notice} ${photo.error}" }
    // Anyone sending bad input: bytes that are not a photo are refused by core, shown.
    val notAPhoto = lead.app.addPhoto(visit, "GIF89a".toByteArray(), interior = false) as Screen.Visit
    expect(notAPhoto.error is ShellError.Invalid) { "${notAPhoto.error}" }
    val note = lead.app.addNote(visit, "债务人在家，同意下周还款。") as Screen.Visit
    expectEqual("Note recorded", note.notice, "note")

    val form = ReceiptForm(payerName = "张三", amountText = "500.00", signaturePng = signaturePng())
    val (receiptSummary, afterReceipt) = team.coSign(lead, partner, lead.app.beginLead(visit) { it.receipt(visit, form) })
    expectEqual("Receipt", receiptSummary.title, "receipt title")
    expect(receiptSummary.lines.any { it.contains("¥500.00 (CNY) cash") }) { "${receiptSummary.lines}" }
    expect(receiptSummary.lines.contains("Paid by 张三 (debtor)")) { "${receiptSummary.lines}" }
    expectEqual("Receipt issued with both signatures", (afterReceipt as Screen.Visit).notice, "receipt notice")

    team.clock.advancedMs += 120_000
    val (_, out) = team.coSign(lead, partner, lead.app.beginLead(visit) { it.checkOut(visit) })
    val checkedOut = (out as Screen.Visit).detail
    expectEqual(NextStep.SEAL, checkedOut.next, "next after check-out")
    expect(checkedOut.duration?.startsWith("2 min") == true) { "${checkedOut.duration}" }
    val kinds = checkedOut.timeline.map { it.what }
    for (k in listOf("Checked in together", "Audio segment", "Photo", "Note", "Receipt issued", "Checked out together")) {
        expect(k in kinds) { "$k missing from $kinds" }
    }

    val (sealSummary, sealed) = team.coSign(lead, partner, lead.app.beginLead(visit) { it.seal(visit) })
    expectEqual(purposeLabel(CoSignPurpose.SEAL), sealSummary.title, "seal title")
    expect((sealed as Screen.Visit).notice?.startsWith("Sealed as bundle") == true) { "${sealed.notice}" }
    val waiting = lead.app.showVisits() as Screen.Visits
    expectEqual("1 visit waiting to upload", waiting.sync.headline, "before upload")
    expect(waiting.sync.needsSync) { "the list offers a sync" }

    val progress = mutableListOf<Pair<Long, Long>>()
    val synced = lead.app.sync({ done, total -> progress += done to total }, null) as Screen.Sync
    expectEqual(null, synced.error, "upload")
    expect(synced.last?.contains("1 uploaded") == true) { "${synced.last}" }
    expectEqual("Everything is uploaded", synced.state.headline, "after upload")
    expect(progress.isNotEmpty() && progress.last().first == progress.last().second) { "progress $progress" }
    // The phone's own thief defence (D01): once the server's receipt verifies, the media
    // and the case's data leave the phone; the list keeps the visit as done.
    val after = lead.app.showVisits() as Screen.Visits
    val doneRow = after.list.rows.first { it.visitId == visit }
    expectEqual(NextStep.NONE, doneRow.next, "nothing left")
    expect(doneRow.state.startsWith("Received")) { doneRow.state }
    expect(doneRow.subtitle.startsWith("Received ")) { doneRow.subtitle }
    val reopened = lead.app.openVisit(visit)
    expect(reopened is Screen.Visits || reopened is Screen.Visit) { "$reopened" }
    println("   after the purge the visit screen shows: " + ((reopened as? Screen.Visits)?.error?.display() ?: "the visit"))
    expect(team.lead.signer.signatures.get() >= 5) { "the DER-converted key signed everything" }
}

/** A stand-in for the signature pad's PNG: any PNG will do for core, which only hashes it. */
fun signaturePng(): ByteArray {
    val image = java.awt.image.BufferedImage(60, 20, java.awt.image.BufferedImage.TYPE_INT_RGB)
    image.createGraphics().apply { drawLine(2, 10, 58, 12); dispose() }
    return java.io.ByteArrayOutputStream().also { javax.imageio.ImageIO.write(image, "png", it) }.toByteArray()
}

/** The tests that need a server, in order (each builds on the phones the first enrols). */
fun flowTests(team: Team): List<Pair<String, () -> Unit>> = listOf(
    "enrolment_leads_from_sign_in_to_the_visit_list" to { enrolmentLeadsFromSignInToTheVisitList(team) },
    "a_lone_agent_cannot_co_sign_their_own_check_in" to { aLoneAgentCannotCoSignTheirOwnCheckIn(team) },
    "a_visit_without_cash_authorisation_refuses_a_receipt" to { aVisitWithoutCashAuthorisationRefusesAReceipt(team) },
    "a_whole_visit_runs_through_the_screens_and_is_uploaded" to { aWholeVisitRunsThroughTheScreensAndIsUploaded(team) },
)
