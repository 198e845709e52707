// Password files in Mosquitto's format: known vectors, files written by the real mosquitto_passwd, the lines that
// are refused, `shoal passwd`'s arguments and output, and the CONNECT decision built on them.
import Foundation
import MQTTCodec
import MQTTRouter
import Testing

@testable import Broker

/// Runs a program and returns its exit status.
@discardableResult
func runProgram(_ path: String, _ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

func temporaryPath(_ name: String) -> String {
    let directory = NSTemporaryDirectory() + "shoal-passwd-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory + "/" + name
}

@Suite struct PasswordHashTests {
    // Written by mosquitto_passwd 2.0.11 (`-c -b pw alice secret`, `-H sha512 -b pw bob pw2`,
    // `-H sha512-pbkdf2 -I 1000 -b pw carol x`).
    static let vectors = """
        alice:$7$101$PpfH6fbIOpSgPQtV$tROxZToSDKr87PLHXeGEmJ4vU+TzPjDGj58cWJInT2Xi+K9mZkBwQdF+i7gQ08Pz0adMiZZHPp5tgOzA9WdXQA==
        bob:$6$KgvOmBn/wIKqzuC3$onSotLxLLPDJDD+GUtG5iIFN7BzadnqrsD5Ll1r2EA/Dkxi2qpJXSKWZstCtLROIbbYno/akbjCXDPgE8Ur6cA==
        carol:$7$1000$8rWZB6mAPCrDLxlZ$xPd49vgYuQg10FzB/3BM3mUbI7MBY7JkE5f+1WUSUdynMdwGIiH1Vy76GsipUoh3JuKGhVSWbgw/2EotFgo2Tw==

        """

    @Test func verifiesKnownVectors() throws {
        // Proves PBKDF2-SHA512 ($7$, 101 and 1000 iterations) and salted SHA-512 ($6$) hashes from mosquitto_passwd
        // verify with the right password only.
        let file = try PasswordFile(parsing: Self.vectors)
        #expect(file.entries.map(\.username) == ["alice", "bob", "carol"])
        #expect(file.hash(for: "alice")?.scheme == .pbkdf2SHA512(iterations: 101))
        #expect(file.hash(for: "bob")?.scheme == .sha512)
        #expect(file.hash(for: "carol")?.scheme == .pbkdf2SHA512(iterations: 1000))
        #expect(file.verify(username: "alice", password: Array("secret".utf8)))
        #expect(file.verify(username: "bob", password: Array("pw2".utf8)))
        #expect(file.verify(username: "carol", password: Array("x".utf8)))
        #expect(!file.verify(username: "alice", password: Array("Secret".utf8)))
        #expect(!file.verify(username: "alice", password: []))
        #expect(!file.verify(username: "bob", password: Array("secret".utf8)))
        #expect(!file.verify(username: "dave", password: Array("secret".utf8)))
    }

    @Test func writesWhatItReads() throws {
        // Proves encoding gives back mosquitto_passwd's exact text, line for line.
        let file = try PasswordFile(parsing: Self.vectors)
        #expect(file.text == Self.vectors.trimmingCharacters(in: .newlines) + "\n")
    }

    @Test func makeProducesVerifiableRandomlySaltedHashes() throws {
        // Proves new hashes are $7$ with 101 iterations and a 12-byte salt, differ per call, and verify.
        let first = try #require(PasswordHash.make(password: "pässword"))
        let second = try #require(PasswordHash.make(password: "pässword"))
        #expect(first.scheme == .pbkdf2SHA512(iterations: 101))
        #expect(first.salt.count == 12 && first.hash.count == 64)
        #expect(first.salt != second.salt)
        #expect(first.verify(password: Array("pässword".utf8)))
        #expect(!first.verify(password: Array("password".utf8)))
        #expect(first.encoded.hasPrefix("$7$101$"))
        let sha = try #require(PasswordHash.make(password: "p", scheme: .sha512))
        #expect(sha.encoded.hasPrefix("$6$") && sha.verify(password: Array("p".utf8)))
    }

    @Test func refusesBadLinesWithTheirLineNumber() {
        // Proves every malformed line is refused with file:line and the reason; comments and blanks are skipped.
        let good = "alice:$6$KgvOmBn/wIKqzuC3$onSotLxLLPDJDD+GUtG5iIFN7BzadnqrsD5Ll1r2EA/Dkxi2qpJXSKWZstCtLROIbbYno/akbjCXDPgE8Ur6cA=="
        let cases: [(String, PasswordFileError.Problem)] = [
            ("# c\n\nnocolon\n", .missingSeparator),
            ("\n\n:hash\n", .emptyUsername),
            ("\n\nu:plaintext\n", .unknownHashFormat),
            ("\n\nu:$5$abc$def\n", .unknownHashFormat),
            ("\n\nu:$7$0$PpfH6fbIOpSgPQtV$x\n", .invalidIterations("0")),
            ("\n\nu:$7$x$PpfH6fbIOpSgPQtV$x\n", .invalidIterations("x")),
            ("\n\nu:$6$not*base64$abcd\n", .invalidBase64("salt")),
            ("\n\nu:$6$PpfH6fbIOpSgPQtV$abcd\n", .invalidBase64("hash")),
            ("\(good)\n#\n\(good)\n", .duplicateUsername("alice")),
        ]
        for (text, problem) in cases {
            #expect(throws: PasswordFileError(file: "f", line: 3, problem: problem)) {
                try PasswordFile(parsing: text, file: "f")
            }
        }
        #expect(PasswordFileError(file: "pw", line: 3, problem: .emptyUsername).description == "pw:3: empty user name")
    }

    @Test func base64RoundTripsEveryLength() {
        // Proves the base64 codec round-trips 0...40 bytes and refuses unpadded or foreign text.
        for length in 0...40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64.decode(Substring(Base64.encode(bytes))) == bytes)
        }
        #expect(Base64.encode(Array("Man".utf8)) == "TWFu")
        #expect(Base64.encode(Array("Ma".utf8)) == "TWE=")
        #expect(Base64.decode("TWE") == nil)
        #expect(Base64.decode("TW=u") == nil)
        #expect(Base64.decode("TW!u") == nil)
    }
}

@Suite struct MosquittoPasswdCompatibilityTests {
    static let tool = "/usr/bin/mosquitto_passwd"

    @Test func acceptsFilesWrittenByMosquittoPasswd() throws {
        // Proves files made by the real mosquitto_passwd (default $7$, -H sha512, -I iterations) parse unchanged and
        // verify the passwords given to it.
        try #require(FileManager.default.isExecutableFile(atPath: Self.tool), "mosquitto_passwd not installed")
        let path = temporaryPath("pw")
        #expect(try runProgram(Self.tool, ["-c", "-b", path, "alice", "s3cret!"]) == 0)
        #expect(try runProgram(Self.tool, ["-H", "sha512", "-b", path, "bob", "hunter2"]) == 0)
        #expect(try runProgram(Self.tool, ["-I", "2000", "-b", path, "carol", "with space"]) == 0)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let file = try PasswordFile(parsing: text, file: path)
        #expect(file.verify(username: "alice", password: Array("s3cret!".utf8)))
        #expect(file.verify(username: "bob", password: Array("hunter2".utf8)))
        #expect(file.verify(username: "carol", password: Array("with space".utf8)))
        #expect(file.hash(for: "bob")?.scheme == .sha512)
        #expect(file.hash(for: "carol")?.scheme == .pbkdf2SHA512(iterations: 2000))
        #expect(!file.verify(username: "alice", password: Array("hunter2".utf8)))
    }

    @Test func shoalPasswdWritesFilesMosquittoPasswdAccepts() throws {
        // Proves `shoal passwd -c -b` output is read by mosquitto_passwd (-b updating another user keeps ours) and
        // by Shoal; -D deletes.
        try #require(FileManager.default.isExecutableFile(atPath: Self.tool), "mosquitto_passwd not installed")
        let path = temporaryPath("pw")
        #expect(runPasswordCommand(["-c", "-b", path, "alice", "one"]) == 0)
        #expect(runPasswordCommand(["-b", path, "bob", "two"]) == 0)
        #expect(try runProgram(Self.tool, ["-b", path, "carol", "three"]) == 0)
        var file = try PasswordFile(parsing: try String(contentsOfFile: path, encoding: .utf8))
        #expect(file.entries.map(\.username) == ["alice", "bob", "carol"])
        #expect(file.verify(username: "alice", password: Array("one".utf8)))
        #expect(file.verify(username: "bob", password: Array("two".utf8)))
        #expect(file.verify(username: "carol", password: Array("three".utf8)))
        #expect(runPasswordCommand(["-D", path, "bob"]) == 0)
        file = try PasswordFile(parsing: try String(contentsOfFile: path, encoding: .utf8))
        #expect(file.entries.map(\.username) == ["alice", "carol"])
        #expect(runPasswordCommand(["-D", path, "bob"]) == 1)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func parsesPasswdArguments() throws {
        // Proves the argument forms of mosquitto_passwd and the refused combinations.
        let create = try PasswordCommand(arguments: ["-c", "f", "u"])
        #expect(create.file == "f" && create.username == "u" && create.create)
        #expect(create.action == .set(password: nil) && create.scheme == .pbkdf2SHA512(iterations: 101))
        #expect(try PasswordCommand(arguments: ["-b", "-H", "sha512", "f", "u", "p"]).scheme == .sha512)
        #expect(try PasswordCommand(arguments: ["-I", "500", "-b", "f", "u", "p"]).scheme
            == .pbkdf2SHA512(iterations: 500))
        #expect(try PasswordCommand(arguments: ["-D", "f", "u"]).action == .delete)
        for bad in [["-c", "-D", "f", "u"], ["f"], ["-b", "f", "u"], ["-H", "md5", "f", "u"], ["f", "a:b"],
                    ["-x", "f", "u"], ["-I", "0", "f", "u"]] {
            #expect(throws: PasswordCommand.UsageError.self) { try PasswordCommand(arguments: bad) }
        }
    }
}

@Suite struct SecurityTablesTests {
    func connect(_ user: String?, _ password: String?) -> ConnectPacket {
        ConnectPacket(protocolVersion: .v5, clientIdentifier: "c", userName: user, password: password.map { Array($0.utf8) })
    }

    @Test func authenticationDecisions() throws {
        // Proves the CONNECT decision: anonymous per listener, password file users, wrong or missing passwords.
        var tables = SecurityTables(passwordFile: try PasswordFile(parsing: PasswordHashTests.vectors),
                                    allowAnonymousByListener: [true, false], allowAnonymous: false)
        #expect(tables.authenticate(connect(nil, nil), listener: 0) == .accepted)
        #expect(tables.authenticate(connect(nil, nil), listener: 1) == .notAuthorized)
        #expect(tables.authenticate(connect(nil, nil), listener: nil) == .notAuthorized)
        #expect(tables.authenticate(connect("alice", "secret"), listener: 1) == .accepted)
        #expect(tables.authenticate(connect("alice", "wrong"), listener: 0) == .badCredentials)
        #expect(tables.authenticate(connect("alice", nil), listener: 0) == .badCredentials)
        #expect(tables.authenticate(connect("mallory", "secret"), listener: 0) == .badCredentials)
        tables.passwordFile = nil
        #expect(tables.authenticate(connect("anyone", nil), listener: 1) == .accepted)
    }

    @Test func loadNamesTheSettingAndLine() throws {
        // Proves startup errors name the setting, the file and the line; a missing file names the path.
        var configuration = BrokerConfiguration()
        configuration.aclFile = temporaryPath("acl")
        try "topic read a\nbogus\n".write(toFile: configuration.aclFile!, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError(setting: "acl_file", reason:
            "\(configuration.aclFile!):2: unknown keyword 'bogus' (expected topic, pattern or user)")) {
            try SecurityTables.load(configuration)
        }
        configuration.aclFile = nil
        configuration.passwordFile = "/nonexistent/shoal/pw"
        #expect(throws: ConfigurationError(setting: "password_file", reason:
            "cannot read '/nonexistent/shoal/pw': No such file or directory")) {
            try SecurityTables.load(configuration)
        }
    }

    @Test func reloadKeepsTheOldTablesWhenTheNewFileIsBad() throws {
        // Proves reloadSecurity installs a good file (new generation) and refuses a bad one, keeping the old.
        let path = temporaryPath("acl")
        try "topic read a/#\n".write(toFile: path, atomically: true, encoding: .utf8)
        var configuration = BrokerConfiguration()
        configuration.aclFile = path
        let exchange = SecurityExchange(try SecurityTables.load(configuration))
        let logger = Logger(level: .error, fileDescriptor: open("/dev/null", O_WRONLY))
        let before = exchange.generation
        try "topic read b/#\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(reloadSecurity(configuration: configuration, exchange: exchange, logger: logger))
        #expect(exchange.generation == before + 1)
        #expect(exchange.current().tables.accessControl?.anonymousRules.first?.filter == Array("b/#".utf8))
        try "topic nonsense b/#\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(!reloadSecurity(configuration: configuration, exchange: exchange, logger: logger))
        #expect(exchange.generation == before + 1)
        #expect(exchange.current().tables.accessControl?.anonymousRules.first?.filter == Array("b/#".utf8))
    }
}
