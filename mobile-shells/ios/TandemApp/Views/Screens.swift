// The screens, each a direct rendering of AppModel's state. Buttons follow the visit's
// state as core reports it; whether an action is allowed is core's answer.
import AVFoundation
import SwiftUI
import Tandem

struct RootView: View {
    @EnvironmentObject var model: AppModel

    var body: some View {
        NavigationStack {
            VStack(alignment: .leading, spacing: 12) {
                if model.working { ProgressView() }
                if let error = model.error { Text(error).foregroundColor(.red) }
                if let notice = model.notice { Text(notice) }
                switch model.screen {
                case .signIn: SignInView()
                case .visits(let visits, let status): VisitListView(visits: visits, status: status)
                case .visit(let v, let c, let e): VisitView(visit: v, caseView: c, events: e)
                case .lead(let visitId, let purpose, let frames): LeadView(visitId: visitId, purpose: purpose, frames: frames)
                case .partnerScanning: ScannerView { model.partnerScanned($0) }
                case .partnerReview(_, let view): ReviewView(view: view)
                case .partnerReply(let frames): CyclingQR(frames: frames)
                case .sync(let status, let last): SyncView(status: status, last: last)
                }
                Spacer()
            }
            .padding()
            .toolbar { Button("Visits") { model.showVisits() } }
        }
    }
}

struct SignInView: View {
    @EnvironmentObject var model: AppModel
    @State private var code = ""

    var body: some View {
        Text("Enrol this phone with the one-time code from your administrator.")
        TextField("Enrolment code", text: $code).textInputAutocapitalization(.characters).autocorrectionDisabled()
        Button("Enrol") { model.signIn(code: code) }.disabled(code.isEmpty)
        #if targetEnvironment(simulator)
        Text("Simulator: the device key is a software key, not the Secure Enclave.").font(.footnote)
        #endif
    }
}

struct VisitListView: View {
    @EnvironmentObject var model: AppModel
    let visits: [VisitSummary]
    let status: SyncState?

    var body: some View {
        if let status { Text(status.pending > 0 ? "\(status.pending) visit(s) waiting to upload" : "Everything is uploaded") }
        ForEach(status?.deadlines ?? [], id: \.message) { Text("\($0.rule): \($0.message)").foregroundColor(.orange) }
        HStack {
            Button("Sync") { model.syncNow() }
            Button("Co-sign for the lead") { model.beginPartner() }
        }
        List(visits, id: \.id) { v in
            Button { model.open(v.id) } label: {
                VStack(alignment: .leading) {
                    Text("Case \(v.caseId.prefix(8))")
                    Text(label(v.state)).font(.footnote)
                }
            }
        }
    }
}

struct VisitView: View {
    @EnvironmentObject var model: AppModel
    let visit: VisitSummary
    let caseView: CaseView
    let events: [EventSummary]
    @State private var note = ""
    @State private var showPhoto = false
    @State private var showReceipt = false

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 8) {
                Text("\(caseView.caseRef) · \(label(visit.state))")
                Text("\(caseView.debtorName) · card \(caseView.cardMasked) · ID \(caseView.debtorIdMasked)")
                Text("Outstanding \(yuan(caseView.outstandingFen))")
                ForEach(caseView.addresses, id: \.id) { Text($0.text) }
                actions
                if showPhoto { PhotoView(visitId: visit.id) }
                if showReceipt { ReceiptView(visitId: visit.id) }
                Divider()
                ForEach(events, id: \.seq) { e in
                    Text("\(Date(timeIntervalSince1970: Double(e.atMs) / 1000).formatted(date: .omitted, time: .shortened))  \(e.kind)\(e.anchored ? "" : " (phone clock)")")
                    if let flag = e.flag { Text("  \(flag.rule): \(flag.message)").foregroundColor(.orange) }
                }
            }
        }
    }

    @ViewBuilder private var actions: some View {
        switch visit.state {
        case .assigned:
            Button("Check in together") { model.checkIn(visit.id) }
        case .checkedIn, .active:
            HStack {
                Button(model.isRecording ? "Stop recording" : "Record audio") {
                    model.isRecording ? model.stopRecording() : model.startRecording(visit.id)
                }
                Button("Photo") { showPhoto.toggle() }
                Button("Receipt") { showReceipt.toggle() }
            }
            TextField("Note", text: $note, axis: .vertical)
            Button("Save note") { model.addNote(visit.id, note); note = "" }.disabled(note.isEmpty)
            Button("Check out together") { model.checkOut(visit.id) }
        case .checkedOut:
            Button("Seal together") { model.seal(visit.id) }
        case .sealed, .uploading:
            Button("Upload (sync)") { model.syncNow() }
        case .acknowledged, .purged:
            Text("Received by the server")
        }
    }
}

func label(_ state: VisitState) -> String {
    switch state {
    case .assigned: return "Assigned"
    case .checkedIn: return "Checked in"
    case .active: return "In progress"
    case .checkedOut: return "Checked out"
    case .sealed: return "Sealed, waiting to upload"
    case .uploading: return "Uploading"
    case .acknowledged: return "Received by the server"
    case .purged: return "Received; media removed from this phone"
    }
}

/// A multi-frame code, each frame 400 ms on screen.
struct CyclingQR: View {
    let frames: [String]

    var body: some View {
        TimelineView(.periodic(from: .now, by: 0.4)) { context in
            let index = Int(context.date.timeIntervalSinceReferenceDate / 0.4) % max(frames.count, 1)
            VStack {
                Image(uiImage: qrImage(frames[index])).interpolation(.none).resizable().scaledToFit()
                Text("Code \(index + 1) of \(frames.count)")
            }
        }
    }
}

struct LeadView: View {
    @EnvironmentObject var model: AppModel
    let visitId: String
    let purpose: CoSignPurpose
    let frames: [String]

    var body: some View {
        Text("Let your partner scan this, then scan their answer.")
        CyclingQR(frames: frames)
        ScannerView { model.leadScanned($0) }.frame(height: 200)
    }
}

struct ReviewView: View {
    @EnvironmentObject var model: AppModel
    let view: ChallengeView

    var body: some View {
        // Read before signing: core checked all of it on this phone.
        Text("\(view.purpose)").font(.headline)
        Text("Lead agent \(view.leadAgent.prefix(8)) · phones \(view.partnerDistanceM) m apart")
        if let r = view.receipt {
            Text("Receipt no. \(r.serial): \(yuan(r.amountFen)) \(r.currency), paid by \(r.payerName)")
        }
        if let reason = view.voidReason { Text("Void: \(reason)") }
        HStack {
            Button("I agree: sign") { model.partnerAgree() }
            Button("Decline") { model.showVisits() }
        }
    }
}

struct SyncView: View {
    @EnvironmentObject var model: AppModel
    let status: SyncState
    let last: String?

    var body: some View {
        if let last { Text(last) }
        Text("\(status.pending) waiting · \(status.quarantined) refused · \(status.acknowledged) received")
        if let error = status.lastError { Text("Last error: \(error)") }
        ForEach(status.deadlines, id: \.message) { Text("\($0.rule): \($0.message)").foregroundColor(.orange) }
        Button("Sync now") { model.syncNow() }
    }
}
