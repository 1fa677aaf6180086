// Core's clock and location source from iOS. Core reads both synchronously on the thread
// of its call, so the latest CoreLocation fix is kept as it arrives.
import CoreLocation
import Foundation
import Tandem

/// Wall time, monotonic time counting sleep, and a boot id.
final class SystemClock: Tandem.Clock {
    func wallMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    /// CLOCK_MONOTONIC_RAW keeps counting while the phone sleeps.
    func monotonicMs() -> Int64 { Int64(clock_gettime_nsec_np(CLOCK_MONOTONIC_RAW) / 1_000_000) }

    /// The kernel's boot time: changes on every restart.
    func bootId() -> String {
        var boot = timeval()
        var size = MemoryLayout<timeval>.size
        var mib: [Int32] = [CTL_KERN, KERN_BOOTTIME]
        guard sysctl(&mib, 2, &boot, &size, nil, 0) == 0 else { return "ios-boot-unknown" }
        return "ios-boot-\(boot.tv_sec).\(boot.tv_usec)"
    }
}

/// The latest CoreLocation fix, with the simulated-location flag (iOS 15+).
final class PhoneLocation: NSObject, Tandem.LocationSource, CLLocationManagerDelegate {
    private let manager = CLLocationManager()
    private let lock = NSLock()
    private var latest: CLLocation?

    override init() {
        super.init()
        manager.delegate = self
        manager.desiredAccuracy = kCLLocationAccuracyBest
    }

    func start() {
        manager.requestWhenInUseAuthorization()
        manager.startUpdatingLocation()
    }

    func stop() { manager.stopUpdatingLocation() }

    func locationManager(_ manager: CLLocationManager, didUpdateLocations locations: [CLLocation]) {
        lock.lock(); latest = locations.last; lock.unlock()
    }

    func currentFix() -> LocationFix? {
        lock.lock(); defer { lock.unlock() }
        guard let l = latest, l.horizontalAccuracy >= 0 else { return nil }
        let simulated: Bool
        if #available(iOS 15.0, *) {
            simulated = l.sourceInformation?.isSimulatedBySoftware ?? false
        } else {
            simulated = false
        }
        // CoreLocation reports WGS-84 even in mainland China (only map display is GCJ-02).
        return LocationFix(
            latE7: Int32((l.coordinate.latitude * 1e7).rounded()),
            lonE7: Int32((l.coordinate.longitude * 1e7).rounded()),
            datum: .wgs84,
            accuracyM: UInt32(l.horizontalAccuracy.rounded()),
            provider: .gnss,
            mock: simulated,
            takenAtMs: Int64(l.timestamp.timeIntervalSince1970 * 1000)
        )
    }
}
