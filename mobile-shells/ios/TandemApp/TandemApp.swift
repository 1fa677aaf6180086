// The app. Screenshot protection where iOS allows it (D02): the content lives inside a
// secure text field's layer, which iOS leaves out of screenshots and recordings; a cover
// hides it in the app switcher and whenever the app is inactive; a screenshot taken anyway
// is noted to the agent.
import BackgroundTasks
import SwiftUI
import Tandem

@main
struct TandemApp: App {
    @Environment(\.scenePhase) private var phase
    @StateObject private var holder = ModelHolder()
    @State private var screenshotNoticed = false

    init() {
        BackgroundSync.register()
    }

    var body: some Scene {
        WindowGroup {
            ZStack {
                SecureContainer {
                    if let model = holder.model {
                        RootView().environmentObject(model)
                    } else {
                        Text(holder.problem ?? "Opening…").padding()
                    }
                }
                if phase != .active {
                    Color(.systemBackground).ignoresSafeArea().overlay(Text("Tandem"))
                }
            }
            .onReceive(NotificationCenter.default.publisher(for: UIApplication.userDidTakeScreenshotNotification)) { _ in
                screenshotNoticed = true
            }
            .alert("Screenshots are not allowed (D02).", isPresented: $screenshotNoticed) { Button("OK") {} }
        }
        .onChange(of: phase) { newPhase in
            if newPhase == .background { BackgroundSync.schedule() }
        }
    }
}

/// Opens the phone once.
@MainActor
final class ModelHolder: ObservableObject {
    @Published var model: AppModel?
    @Published var problem: String?

    init() {
        do {
            let opened = try AppModel(serverURL: "https://tandem.example")
            model = opened
            BackgroundSync.attach(opened)
        } catch {
            problem = describe(error)
        }
    }
}

/// Hosts SwiftUI content in the layer of a secure UITextField: iOS blanks that layer in
/// screenshots, screen recordings and AirPlay mirroring.
struct SecureContainer<Content: View>: UIViewRepresentable {
    @ViewBuilder var content: () -> Content

    func makeUIView(context: Context) -> UIView {
        let field = UITextField()
        field.isSecureTextEntry = true
        field.isUserInteractionEnabled = true
        let host = UIHostingController(rootView: content())
        context.coordinator.host = host
        // The secure field's first subview is the canvas iOS protects.
        let canvas = field.subviews.first ?? field
        canvas.isUserInteractionEnabled = true
        host.view.translatesAutoresizingMaskIntoConstraints = false
        canvas.addSubview(host.view)
        NSLayoutConstraint.activate([
            host.view.topAnchor.constraint(equalTo: canvas.topAnchor),
            host.view.bottomAnchor.constraint(equalTo: canvas.bottomAnchor),
            host.view.leadingAnchor.constraint(equalTo: canvas.leadingAnchor),
            host.view.trailingAnchor.constraint(equalTo: canvas.trailingAnchor),
        ])
        return field
    }

    func updateUIView(_ view: UIView, context: Context) {
        context.coordinator.host?.rootView = content()
    }

    func makeCoordinator() -> Coordinator { Coordinator() }

    final class Coordinator {
        var host: UIHostingController<Content>?
    }
}

/// Sync in the background: a BGProcessingTask when the phone has network, so a sealed
/// visit reaches the server within E03's 24 hours even if the app is not opened again.
/// Core makes the HTTP calls itself (blocking); a background URLSession could carry the
/// uploads only through a `Transport` foreign trait, which the bindings do not offer yet.
enum BackgroundSync {
    static let identifier = "com.tandem.field.sync"
    // Set once the phone is open; the task runs only in a process that opened it.
    private static weak var model: AppModel?

    static func register() {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            guard let model, let task = task as? BGProcessingTask else { task.setTaskCompleted(success: false); return }
            let cancel = CancelToken()
            task.expirationHandler = { cancel.cancel() }
            let phone = model.phone, server = model.server
            DispatchQueue.global(qos: .utility).async {
                let ok = (try? phone.syncNow(server: server, progress: nil, cancel: cancel)) != nil
                task.setTaskCompleted(success: ok)
            }
        }
    }

    static func attach(_ model: AppModel) {
        self.model = model
    }

    static func schedule() {
        let request = BGProcessingTaskRequest(identifier: identifier)
        request.requiresNetworkConnectivity = true
        try? BGTaskScheduler.shared.submit(request)
    }
}
