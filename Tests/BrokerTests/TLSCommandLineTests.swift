@testable import Broker
import Testing

/// The TLS flags of `parseCommandLine`.
@Suite struct TLSCommandLineTests {
    // Proves: --tls-port with certificate and key adds a TLS listener on the --bind address, with every TLS flag.
    @Test func tlsListenerFromFlags() throws {
        let request = try parseCommandLine([
            "--tls-port", "8883", "--certfile", "s.crt", "--keyfile", "s.key", "--bind", "127.0.0.1",
            "--cafile", "ca.crt", "--capath", "/etc/ssl/certs", "--require-certificate", "true",
            "--use-identity-as-username", "yes", "--tls-version", "tlsv1.3", "--ciphers", "HIGH",
            "--ciphers-tls1.3=TLS_AES_128_GCM_SHA256", "--tls-groups", "X25519:P-256",
        ])
        guard case .run(let configuration) = request else { Issue.record("not a run request"); return }
        #expect(configuration.listeners.count == 2)
        #expect(configuration.listeners[0].tls == nil)
        let listener = configuration.listeners[1]
        #expect(listener.host == "127.0.0.1" && listener.port == 8883)
        let tls = try #require(listener.tls)
        #expect(tls.certificateFile == "s.crt" && tls.keyFile == "s.key")
        #expect(tls.caFile == "ca.crt" && tls.caPath == "/etc/ssl/certs")
        #expect(tls.requireCertificate && tls.useIdentityAsUsername)
        #expect(tls.minimumVersion == .tls13)
        #expect(tls.ciphers == "HIGH" && tls.cipherSuitesTLS13 == "TLS_AES_128_GCM_SHA256")
        #expect(tls.groups == "X25519:P-256")
    }

    // Proves: without --tls-port there is no TLS listener, and the defaults are Mosquitto's.
    @Test func defaults() throws {
        guard case .run(let plain) = try parseCommandLine([]) else { Issue.record("not a run request"); return }
        #expect(plain.listeners.count == 1 && plain.listeners[0].tls == nil)
        guard case .run(let configuration) = try parseCommandLine(["--tls-port", "8883", "--certfile", "a",
                                                                   "--keyfile", "b"]) else { return }
        let tls = try #require(configuration.listeners[1].tls)
        #expect(!tls.requireCertificate && !tls.useIdentityAsUsername && tls.minimumVersion == .tls12)
        #expect(tls.caFile == nil && tls.ciphers == nil && tls.cipherSuitesTLS13 == nil && tls.groups == nil)
    }

    // Proves: every inconsistent combination names the flag at fault.
    @Test(arguments: [
        (["--tls-port", "8883", "--keyfile", "k"], "--certfile"),
        (["--tls-port", "8883", "--certfile", "c"], "--keyfile"),
        (["--certfile", "c", "--keyfile", "k"], "--certfile"),
        (["--ciphers", "HIGH"], "--ciphers"),
        (["--tls-port", "8883", "--certfile", "c", "--keyfile", "k", "--tls-version", "tlsv1.1"], "--tls-version"),
        (["--tls-port", "8883", "--certfile", "c", "--keyfile", "k", "--require-certificate", "maybe"],
         "--require-certificate"),
        (["--tls-port", "70000"], "--tls-port"),
    ])
    func refusals(arguments: [String], setting: String) {
        #expect(throws: ConfigurationError.self) { try parseCommandLine(arguments) }
        do {
            _ = try parseCommandLine(arguments)
        } catch {
            #expect(error.setting == setting)
        }
    }
}
