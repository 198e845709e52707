#if canImport(Glibc)
import Glibc
#endif

// MARK: - `shoal passwd`: mosquitto_passwd's command line

/// The `shoal passwd` usage text.
public let passwordCommandUsage = """
    Usage: shoal passwd [-H sha512 | -H sha512-pbkdf2] [-I ITERATIONS] [-c | -D] FILE USER
           shoal passwd [-H sha512 | -H sha512-pbkdf2] [-I ITERATIONS] [-c] -b FILE USER PASSWORD

    Writes a password file in Mosquitto's format (mosquitto_passwd's), read by --password-file.
      -b   batch mode: the password is the last argument (otherwise it is read from standard input,
           twice with a prompt when that is a terminal)
      -c   create FILE, overwriting it if it exists
      -D   delete USER from FILE
      -H   hash: sha512-pbkdf2 (default, $7$) or sha512 ($6$, Mosquitto 1.6 and earlier)
      -I   PBKDF2 iterations (default 101, as mosquitto_passwd)
    """

/// What `shoal passwd` was asked to do.
public struct PasswordCommand: Equatable {
    public enum Action: Equatable {
        /// Add or update USER with this password (`nil`: read it from standard input).
        case set(password: String?)
        /// Remove USER.
        case delete
    }

    public var file: String
    public var username: String
    public var action: Action
    /// Start from an empty file instead of the existing one (`-c`).
    public var create: Bool
    public var scheme: PasswordHash.Scheme

    /// A command-line problem, said in words.
    public struct UsageError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Parses the arguments after `passwd`.
    public init(arguments: [String]) throws(UsageError) {
        var batch = false
        var create = false
        var delete = false
        var hashName = "sha512-pbkdf2"
        var iterations = PasswordHash.defaultIterations
        var positional: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "-b": batch = true
            case "-c": create = true
            case "-D": delete = true
            case "-H", "-I":
                index += 1
                guard index < arguments.count else { throw UsageError(description: "\(argument) needs a value") }
                if argument == "-H" {
                    hashName = arguments[index]
                } else {
                    guard let count = Int(arguments[index]), count >= 1, count <= PasswordHash.iterationsMax else {
                        throw UsageError(description: "-I: '\(arguments[index])' is not an integer in 1...1000000")
                    }
                    iterations = count
                }
            default:
                if argument.hasPrefix("-") && argument.count > 1 {
                    throw UsageError(description: "unknown option \(argument)")
                }
                positional.append(argument)
            }
            index += 1
        }
        if create && delete { throw UsageError(description: "-c and -D cannot be used together") }
        if delete && batch { throw UsageError(description: "-b and -D cannot be used together") }
        let expected = batch ? 3 : 2
        guard positional.count == expected else {
            throw UsageError(description: batch ? "expected FILE USER PASSWORD" : "expected FILE USER")
        }
        switch hashName {
        case "sha512-pbkdf2": scheme = .pbkdf2SHA512(iterations: iterations)
        case "sha512": scheme = .sha512
        default: throw UsageError(description: "-H: '\(hashName)' is not sha512 or sha512-pbkdf2")
        }
        file = positional[0]
        username = positional[1]
        if username.isEmpty || username.contains(":") {
            throw UsageError(description: "user names may not be empty or contain ':'")
        }
        action = delete ? .delete : .set(password: batch ? positional[2] : nil)
        self.create = create
    }
}

/// Runs `shoal passwd` with the arguments after `passwd`; prints problems to standard error.
/// - Returns: the process exit status (0 done, 1 failed, 2 usage).
public func runPasswordCommand(_ arguments: [String]) -> Int32 {
    if arguments.contains("-h") || arguments.contains("--help") {
        print(passwordCommandUsage)
        return 0
    }
    let command: PasswordCommand
    do throws(PasswordCommand.UsageError) {
        command = try PasswordCommand(arguments: arguments)
    } catch {
        printError("shoal passwd: \(error)\n\n\(passwordCommandUsage)")
        return 2
    }
    var file = PasswordFile()
    if !command.create {
        switch readWholeFile(command.file) {
        case .success(let bytes):
            do throws(PasswordFileError) {
                file = try PasswordFile(parsing: String(decoding: bytes, as: UTF8.self), file: command.file)
            } catch {
                printError("shoal passwd: \(error)")
                return 1
            }
        case .failure(let error):
            printError("shoal passwd: cannot read '\(command.file)': \(String(cString: strerror(error.code)))"
                + (error.code == ENOENT ? " (use -c to create it)" : ""))
            return 1
        }
    }
    switch command.action {
    case .delete:
        if !file.remove(command.username) {
            printError("shoal passwd: user '\(command.username)' not in '\(command.file)'")
            return 1
        }
    case .set(let given):
        guard let password = given ?? readPassword() else { return 1 }
        if password.isEmpty {
            printError("shoal passwd: empty password")
            return 1
        }
        guard let hash = PasswordHash.make(password: password, scheme: command.scheme) else {
            printError("shoal passwd: OpenSSL could not hash the password")
            return 1
        }
        file.set(command.username, hash: hash)
    }
    if let error = writeFileReplacing(command.file, text: file.text) {
        printError("shoal passwd: cannot write '\(command.file)': \(String(cString: strerror(error.code)))")
        return 1
    }
    return 0
}

/// The password from standard input: prompted twice without echo on a terminal, else the first line.
func readPassword() -> String? {
    if isatty(STDIN_FILENO) == 1 {
        guard let first = getpass("Password: ").map({ String(cString: $0) }),
              let second = getpass("Reenter password: ").map({ String(cString: $0) }) else { return nil }
        if first != second {
            printError("shoal passwd: passwords do not match")
            return nil
        }
        return first
    }
    guard var line = readLine(strippingNewline: true) else {
        printError("shoal passwd: no password on standard input")
        return nil
    }
    if line.hasSuffix("\r") { line.removeLast() }
    return line
}

func printError(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}

/// Writes `text` to `path` through a temporary file renamed over it, so a reader (a broker reloading on SIGHUP)
/// never sees half a file. The file is created with mode 0600: it holds password hashes.
func writeFileReplacing(_ path: String, text: String) -> FileErrno? {
    let temporary = path + ".tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    if fd < 0 { return FileErrno(code: errno) }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        if count < 0 {
            if errno == EINTR { continue }
            let error = FileErrno(code: errno)
            close(fd)
            unlink(temporary)
            return error
        }
        written += count
    }
    if fsync(fd) != 0 || close(fd) != 0 {
        let error = FileErrno(code: errno)
        unlink(temporary)
        return error
    }
    if rename(temporary, path) != 0 {
        let error = FileErrno(code: errno)
        unlink(temporary)
        return error
    }
    return nil
}
