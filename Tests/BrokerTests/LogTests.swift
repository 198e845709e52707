// The logger's line format, its shared level and destination (changed at run time by a reload), file appending and
// reopening for logrotate, and the rate-limited warnings.
import Foundation
import Testing

@testable import Broker

/// Reads a whole file as text ("" when missing).
func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

@Suite struct LoggerTests {
    @Test func writesTimestampedLinesAtOrAboveItsLevelToAFile() throws {
        // Proves a file destination gets `ISO8601Z level message` lines, only at or above the level, appended.
        let path = temporaryPath("log")
        try "existing line\n".write(toFile: path, atomically: true, encoding: .utf8)
        let logger = try Logger.open(level: .info, destination: .file(path))
        logger.info("hello")
        logger.debug("not written")
        logger.warning("careful")
        let lines = readText(path).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0] == "existing line")
        let pattern = #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z info hello$/#
        #expect(lines[1].wholeMatch(of: pattern) != nil)
        #expect(lines[2].hasSuffix(" warning careful"))
    }

    @Test func levelChangesForEveryCopy() throws {
        // Proves a copy of the logger (as each shard holds) sees a level set through the shared control.
        let path = temporaryPath("log")
        let logger = try Logger.open(level: .info, destination: .file(path))
        let copy = logger
        copy.debug("hidden")
        logger.control.setLevel(.debug)
        #expect(copy.level == .debug)
        copy.debug("shown")
        #expect(!readText(path).contains("hidden"))
        #expect(readText(path).contains("debug shown"))
    }

    @Test func reopensTheFileAfterLogrotateMovedIt() throws {
        // Proves setDestination with the same path starts a new file after the old one was renamed, keeping the
        // logger's descriptor number (shards never see it change).
        let path = temporaryPath("log")
        let logger = try Logger.open(level: .info, destination: .file(path))
        let descriptor = logger.fileDescriptor
        logger.info("before rotation")
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        logger.info("still to the old file")
        try logger.control.setDestination(.file(path))
        logger.info("after rotation")
        #expect(logger.fileDescriptor == descriptor)
        #expect(readText(path + ".1").contains("before rotation"))
        #expect(readText(path + ".1").contains("still to the old file"))
        #expect(!readText(path).contains("before rotation"))
        #expect(readText(path).contains("after rotation"))
        #expect(logger.control.destination == .file(path))
    }

    @Test func refusesAFileThatCannotBeOpened() throws {
        // Proves an unopenable log file is a configuration error naming log_dest and the path, and that a failed
        // switch keeps the old destination.
        #expect(throws: ConfigurationError(setting: "log_dest", reason:
            "cannot open '/nonexistent/shoal/log': No such file or directory")) {
            try Logger.open(level: .info, destination: .file("/nonexistent/shoal/log"))
        }
        let path = temporaryPath("log")
        let logger = try Logger.open(level: .info, destination: .file(path))
        #expect(throws: ConfigurationError.self) { try logger.control.setDestination(.file("/nonexistent/x")) }
        logger.info("kept")
        #expect(readText(path).contains("info kept"))
        #expect(logger.control.destination == .file(path))
    }
}

@Suite struct RateLimitedLogTests {
    @Test func writesOneLinePerKeyPerIntervalAndCountsTheRest() throws {
        // Proves a flood of one key becomes one line per interval, the next line reports how many were held
        // back, another key is independent, and a suppressed message is never built.
        let path = temporaryPath("log")
        let logger = try Logger.open(level: .info, destination: .file(path))
        var limiter = RateLimitedLog(intervalMillis: 1000)
        // Counts the messages the limiter actually built (the autoclosure runs only for a written line).
        var built = 0
        func log(_ level: LogLevel = .warning, key: String, nowMillis: UInt64, logger: Logger, _ text: String) -> Bool {
            limiter.log(level, key: key, nowMillis: nowMillis, logger: logger, { built += 1; return text }())
        }
        #expect(log(key: "drop", nowMillis: 5000, logger: logger, "drop 1"))
        for i in 2...10 {
            #expect(!log(key: "drop", nowMillis: 5000 + UInt64(i) * 10, logger: logger, "drop \(i)"))
        }
        #expect(limiter.suppressedCount(key: "drop") == 9)
        #expect(log(key: "full", nowMillis: 5500, logger: logger, "full 1"))
        #expect(log(key: "drop", nowMillis: 6000, logger: logger, "drop 11"))
        #expect(limiter.suppressedCount(key: "drop") == 0)
        #expect(!log(key: "drop", nowMillis: 6999, logger: logger, "drop 12"))
        #expect(built == 3)
        let lines = readText(path).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].hasSuffix("warning drop 1"))
        #expect(lines[1].hasSuffix("warning full 1"))
        #expect(lines[2].hasSuffix("warning drop 11 (9 similar lines suppressed since the last one)"))
    }

    @Test func writesNothingBelowTheLoggersLevelAndPrunesQuietKeys() throws {
        // Proves lines below the level are neither written nor counted, and prune forgets only quiet keys.
        let path = temporaryPath("log")
        let logger = try Logger.open(level: .error, destination: .file(path))
        var limiter = RateLimitedLog(intervalMillis: 1000)
        // Counts the messages the limiter actually built (the autoclosure runs only for a written line).
        var built = 0
        func log(_ level: LogLevel = .warning, key: String, nowMillis: UInt64, logger: Logger, _ text: String) -> Bool {
            limiter.log(level, key: key, nowMillis: nowMillis, logger: logger, { built += 1; return text }())
        }
        #expect(!log(key: "a", nowMillis: 0, logger: logger, "not written"))
        #expect(readText(path).isEmpty)
        #expect(log(.error, key: "a", nowMillis: 0, logger: logger, "written"))
        #expect(!log(.error, key: "a", nowMillis: 10, logger: logger, "held"))
        #expect(log(.error, key: "b", nowMillis: 10, logger: logger, "written"))
        limiter.prune(nowMillis: 5000)
        #expect(limiter.suppressedCount(key: "a") == 1)
        #expect(log(.error, key: "b", nowMillis: 5001, logger: logger, "b again"))
    }
}
