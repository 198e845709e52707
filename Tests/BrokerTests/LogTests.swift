// The logger's line format, its shared level and destination (changed at run time by a reload), file appending and
// reopening for logrotate, and the overload warnings.
import Foundation
import MQTTRouter
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

@Suite struct OverloadWarningsTests {
    @Test func warnsAtOnceThenAtMostOncePerIntervalWithTheCountSince() throws {
        // Proves the first drop of a kind is logged at once, later ones at most once per interval with the number
        // of events since the last line, kinds are independent, and nothing is written while counters stand still.
        let path = temporaryPath("log")
        let logger = try Logger.open(level: .info, destination: .file(path))
        var warnings = OverloadWarnings()
        var counters = RouterCounters()
        warnings.check(counters, shard: 2, now: 1_000, logger: logger)
        #expect(readText(path).isEmpty)
        counters.droppedOutboundFull = 3
        warnings.check(counters, shard: 2, now: 1_000, logger: logger)
        counters.droppedOutboundFull = 500
        counters.slowClientsDisconnected = 1
        warnings.check(counters, shard: 2, now: 5_000, logger: logger)
        warnings.check(counters, shard: 2, now: 10_999, logger: logger)
        warnings.check(counters, shard: 2, now: 11_000, logger: logger)
        let lines = readText(path).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].contains("warning shard 2: dropped 3 QoS 0 message(s)"))
        #expect(lines[1].contains("warning shard 2: disconnected 1 slow client(s)"))
        #expect(lines[2].contains("warning shard 2: dropped 497 QoS 0 message(s)"))
    }
}
