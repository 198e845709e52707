import COpenSSL

// MARK: - Password hashes in Mosquitto's format

/// One stored password hash, as Mosquitto's `mosquitto_passwd` writes it after `user:`.
///
/// - `$7$<iterations>$<base64 salt>$<base64 hash>`: PBKDF2-HMAC-SHA512 (Mosquitto 2's default, 101 iterations,
///   12-byte salt, 64-byte hash).
/// - `$6$<base64 salt>$<base64 hash>`: SHA-512 of the password followed by the salt (Mosquitto 1.6 and earlier,
///   `mosquitto_passwd -H sha512`).
public struct PasswordHash: Sendable, Equatable {
    /// The hashing scheme.
    public enum Scheme: Sendable, Equatable {
        /// `$6$`: SHA-512(password ‖ salt).
        case sha512
        /// `$7$`: PBKDF2-HMAC-SHA512 with this many iterations.
        case pbkdf2SHA512(iterations: Int)
    }

    /// Mosquitto's default PBKDF2 iteration count (`mosquitto_passwd` without `-I`).
    public static let defaultIterations = 101
    /// Mosquitto's salt length in bytes.
    public static let saltByteCount = 12
    /// SHA-512's output length in bytes.
    public static let hashByteCount = 64
    /// The most PBKDF2 iterations a file may ask for: above it one CONNECT would stall a shard for too long.
    public static let iterationsMax = 1_000_000

    public var scheme: Scheme
    public var salt: [UInt8]
    public var hash: [UInt8]

    public init(scheme: Scheme, salt: [UInt8], hash: [UInt8]) {
        self.scheme = scheme
        self.salt = salt
        self.hash = hash
    }

    /// Parses the text after `user:`.
    /// - Throws: ``PasswordFileError/Problem`` saying what is wrong.
    public init(parsing text: Substring) throws(PasswordFileError.Problem) {
        let fields = text.split(separator: "$", omittingEmptySubsequences: false)
        // "$7$101$salt$hash" splits into ["", "7", "101", "salt", "hash"].
        guard fields.count >= 4, fields[0].isEmpty else { throw .unknownHashFormat }
        let saltText: Substring
        let hashText: Substring
        switch fields[1] {
        case "6":
            guard fields.count == 4 else { throw .unknownHashFormat }
            scheme = .sha512
            saltText = fields[2]
            hashText = fields[3]
        case "7":
            guard fields.count == 5 else { throw .unknownHashFormat }
            guard let iterations = Int(fields[2]), iterations >= 1, iterations <= Self.iterationsMax else {
                throw .invalidIterations(String(fields[2]))
            }
            scheme = .pbkdf2SHA512(iterations: iterations)
            saltText = fields[3]
            hashText = fields[4]
        default:
            throw .unknownHashFormat
        }
        guard let salt = Base64.decode(saltText), !salt.isEmpty else { throw .invalidBase64("salt") }
        guard let hash = Base64.decode(hashText), hash.count == Self.hashByteCount else {
            throw .invalidBase64("hash")
        }
        self.salt = salt
        self.hash = hash
    }

    /// A new hash of `password` (by default `$7$` with Mosquitto's 101 iterations) with a random 12-byte salt
    /// from OpenSSL's `RAND_bytes`.
    /// - Returns: `nil` if OpenSSL cannot produce random bytes or the hash.
    public static func make(password: String, scheme: Scheme = .pbkdf2SHA512(iterations: defaultIterations))
        -> PasswordHash? {
        var salt = [UInt8](repeating: 0, count: saltByteCount)
        guard salt.withUnsafeMutableBytes({ shoal_random_bytes($0.baseAddress, Int32($0.count)) }) == 1 else {
            return nil
        }
        guard let hash = Self.digest(password: Array(password.utf8), salt: salt, scheme: scheme) else { return nil }
        return PasswordHash(scheme: scheme, salt: salt, hash: hash)
    }

    /// The text written after `user:`, exactly as `mosquitto_passwd` writes it.
    public var encoded: String {
        switch scheme {
        case .sha512: "$6$\(Base64.encode(salt))$\(Base64.encode(hash))"
        case .pbkdf2SHA512(let iterations): "$7$\(iterations)$\(Base64.encode(salt))$\(Base64.encode(hash))"
        }
    }

    /// Whether `password` hashes to this hash; the comparison takes the same time wherever the bytes differ.
    public func verify(password: [UInt8]) -> Bool {
        guard let computed = Self.digest(password: password, salt: salt, scheme: scheme),
              computed.count == hash.count else { return false }
        return computed.withUnsafeBytes { left in
            hash.withUnsafeBytes { right in shoal_constant_time_compare(left.baseAddress, right.baseAddress, left.count) }
        } == 0
    }

    /// The 64-byte hash of `password` under `scheme` with `salt`, computed by OpenSSL.
    static func digest(password: [UInt8], salt: [UInt8], scheme: Scheme) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: hashByteCount)
        let ok = password.withUnsafeBytes { passwordBytes in
            salt.withUnsafeBytes { saltBytes in
                output.withUnsafeMutableBytes { outputBytes in
                    switch scheme {
                    case .sha512:
                        shoal_sha512_password_salt(passwordBytes.baseAddress, passwordBytes.count,
                                                   saltBytes.baseAddress, saltBytes.count, outputBytes.baseAddress)
                    case .pbkdf2SHA512(let iterations):
                        shoal_pbkdf2_sha512(passwordBytes.baseAddress, passwordBytes.count, saltBytes.baseAddress,
                                            saltBytes.count, Int32(iterations), outputBytes.baseAddress,
                                            outputBytes.count)
                    }
                }
            }
        }
        return ok == 1 ? output : nil
    }
}

// MARK: - The password file

/// Why a password file was refused: the file, the line and what is wrong with it.
public struct PasswordFileError: Error, Equatable, CustomStringConvertible {
    /// What is wrong with one line.
    public enum Problem: Error, Equatable, Sendable {
        /// A line without `:` between user name and hash.
        case missingSeparator
        /// `:` with nothing before it.
        case emptyUsername
        /// The same user name twice.
        case duplicateUsername(String)
        /// Neither `$6$salt$hash` nor `$7$iterations$salt$hash` (plain-text passwords are not accepted).
        case unknownHashFormat
        /// The iteration count of a `$7$` hash is not a number in 1...1,000,000.
        case invalidIterations(String)
        /// The salt or the hash is not valid base64 (or the hash is not 64 bytes).
        case invalidBase64(String)
    }

    /// The file (or "<text>" for parsed text).
    public var file: String
    /// The 1-based line number.
    public var line: Int
    public var problem: Problem

    public var description: String {
        let what = switch problem {
        case .missingSeparator: "expected user:hash"
        case .emptyUsername: "empty user name"
        case .duplicateUsername(let name): "user '\(name)' appears twice"
        case .unknownHashFormat: "unknown password hash format (expected $6$ or $7$ as mosquitto_passwd writes)"
        case .invalidIterations(let text): "invalid iteration count '\(text)'"
        case .invalidBase64(let part): "invalid base64 \(part)"
        }
        return "\(file):\(line): \(what)"
    }
}

/// A password file in Mosquitto's format: one `user:hash` per line; blank lines and lines starting with `#` are
/// ignored, surrounding blanks are trimmed (as Mosquitto does). Immutable once parsed, shared between shards.
public struct PasswordFile: Sendable, Equatable {
    /// The users in file order, with their hashes.
    public private(set) var entries: [(username: String, hash: PasswordHash)] = []
    private var indexByUsername: [String: Int] = [:]

    public static func == (lhs: PasswordFile, rhs: PasswordFile) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.username == $1.username && $0.hash == $1.hash }
    }

    /// An empty file.
    public init() {}

    /// Parses the file's text.
    /// - Parameter file: the name used in errors.
    /// - Throws: ``PasswordFileError`` naming the first bad line.
    public init(parsing text: String, file: String = "<text>") throws(PasswordFileError) {
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingBlanks()
            if line.isEmpty || line.first == "#" { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw PasswordFileError(file: file, line: lineNumber, problem: .missingSeparator)
            }
            let username = String(line[..<colon].trimmingBlanks())
            if username.isEmpty { throw PasswordFileError(file: file, line: lineNumber, problem: .emptyUsername) }
            if indexByUsername[username] != nil {
                throw PasswordFileError(file: file, line: lineNumber, problem: .duplicateUsername(username))
            }
            let hash: PasswordHash
            do throws(PasswordFileError.Problem) {
                hash = try PasswordHash(parsing: line[line.index(after: colon)...].trimmingBlanks())
            } catch {
                throw PasswordFileError(file: file, line: lineNumber, problem: error)
            }
            indexByUsername[username] = entries.count
            entries.append((username, hash))
        }
    }

    /// The hash stored for `username`.
    public func hash(for username: String) -> PasswordHash? {
        indexByUsername[username].map { entries[$0].hash }
    }

    /// Whether `username` is in the file and `password` matches its hash.
    public func verify(username: String, password: [UInt8]) -> Bool {
        guard let hash = hash(for: username) else { return false }
        return hash.verify(password: password)
    }

    /// Adds `username` or replaces its hash (`mosquitto_passwd` keeps the line's position).
    public mutating func set(_ username: String, hash: PasswordHash) {
        if let index = indexByUsername[username] {
            entries[index].hash = hash
        } else {
            indexByUsername[username] = entries.count
            entries.append((username, hash))
        }
    }

    /// Removes `username`. - Returns: whether it was there.
    @discardableResult
    public mutating func remove(_ username: String) -> Bool {
        guard let index = indexByUsername.removeValue(forKey: username) else { return false }
        entries.remove(at: index)
        for position in index..<entries.count { indexByUsername[entries[position].username] = position }
        return true
    }

    /// The file's text: one `user:hash` line per user, as `mosquitto_passwd` writes it.
    public var text: String {
        entries.map { "\($0.username):\($0.hash.encoded)\n" }.joined()
    }
}

extension Substring {
    /// The substring without leading and trailing spaces, tabs and carriage returns.
    func trimmingBlanks() -> Substring {
        var result = self[...]
        while let first = result.first, first == " " || first == "\t" || first == "\r" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" || last == "\r" { result = result.dropLast() }
        return result
    }
}

// MARK: - Base64 (RFC 4648, with padding, as OpenSSL's BIO_f_base64 writes it)

enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            let b0 = UInt32(bytes[index])
            let b1 = remaining > 1 ? UInt32(bytes[index + 1]) : 0
            let b2 = remaining > 2 ? UInt32(bytes[index + 2]) : 0
            let word = b0 << 16 | b1 << 8 | b2
            output.append(alphabet[Int(word >> 18 & 63)])
            output.append(alphabet[Int(word >> 12 & 63)])
            output.append(remaining > 1 ? alphabet[Int(word >> 6 & 63)] : UInt8(ascii: "="))
            output.append(remaining > 2 ? alphabet[Int(word & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes padded base64; `nil` for anything else.
    static func decode(_ text: Substring) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(characters.count / 4 * 3)
        var index = 0
        while index < characters.count {
            var word: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let character = characters[index + offset]
                let value: UInt32
                switch character {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(character - UInt8(ascii: "A"))
                case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(character - UInt8(ascii: "a")) + 26
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(character - UInt8(ascii: "0")) + 52
                case UInt8(ascii: "+"): value = 62
                case UInt8(ascii: "/"): value = 63
                case UInt8(ascii: "="):
                    // Padding only at the end of the last group, at most two.
                    guard index + 4 == characters.count, offset >= 2 else { return nil }
                    padding += 1
                    value = 0
                default: return nil
                }
                if padding > 0 && character != UInt8(ascii: "=") { return nil }
                word = word << 6 | value
            }
            output.append(UInt8(word >> 16 & 0xFF))
            if padding < 2 { output.append(UInt8(word >> 8 & 0xFF)) }
            if padding < 1 { output.append(UInt8(word & 0xFF)) }
            index += 4
        }
        return output
    }
}
