#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Measurement shared by the micro-benchmarks

/// Monotonic time in nanoseconds.
public func nowNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Keeps results alive so the optimizer cannot drop the measured work.
nonisolated(unsafe) public var sink = 0

/// One measured row: operations per second, nanoseconds and allocations per operation.
public struct BenchmarkRow {
    public var name: String
    public var operationsPerSecond: Double
    public var nanosecondsPerOperation: Double
    public var bytesPerSecond: Double
    /// -1 when the allocation counter does not work.
    public var allocationsPerOperation: Double
}

/// Collects rows and prints them as one table.
public struct BenchmarkTable {
    public private(set) var rows: [BenchmarkRow] = []
    /// What one operation is ("packet", "message", "match").
    public let unit: String

    public init(unit: String) { self.unit = unit }

    /// `BENCH_FIXED_CALLS=N` runs each benchmark body exactly N times instead of for a time: with
    /// `valgrind --tool=callgrind`, instructions per operation are then (total - baseline) / (N × operations).
    static let fixedCalls: Int? = getenv("BENCH_FIXED_CALLS").flatMap { Int(String(cString: $0)) }

    /// Runs `body` (which performs `operationsPerCall` operations of `bytesPerOperation` bytes each call) for about
    /// `seconds`, then `countedCalls` more times with allocation counting on.
    public mutating func measure(
        _ name: String, operationsPerCall: Int, bytesPerOperation: Int = 0, seconds: Double = 0.5,
        countedCalls: Int = 20, _ body: () -> Void
    ) {
        for _ in 0..<10 { body() }  // warm up
        var calls = 0
        let start = nowNanoseconds()
        let deadline = start + UInt64(seconds * 1e9)
        var now = start
        if let fixedCalls = BenchmarkTable.fixedCalls {
            // A fixed amount of work, for instruction counts under callgrind (deterministic where time is not).
            for _ in 0..<fixedCalls { body() }
            calls = fixedCalls
            now = nowNanoseconds()
        }
        while now < deadline && BenchmarkTable.fixedCalls == nil {
            for _ in 0..<16 { body() }
            calls += 16
            now = nowNanoseconds()
        }
        let allocations = countingAllocations { for _ in 0..<countedCalls { body() } }
        let operations = Double(calls * operationsPerCall)
        let elapsed = Double(now - start) / 1e9
        rows.append(
            BenchmarkRow(
                name: name, operationsPerSecond: operations / elapsed,
                nanosecondsPerOperation: elapsed * 1e9 / operations,
                bytesPerSecond: operations * Double(bytesPerOperation) / elapsed,
                allocationsPerOperation: allocations < 0
                    ? -1 : Double(allocations) / Double(countedCalls * operationsPerCall)
            )
        )
    }

    /// Prints the table (with an MB/s column when any row has bytes).
    public func printReport() {
        let showBytes = rows.contains { $0.bytesPerSecond > 0 }
        print(
            padded("benchmark", 44, left: true) + padded("\(unit)s/s", 14) + padded("ns/\(unit)", 12)
                + (showBytes ? padded("MB/s", 10) : "") + padded("allocs/\(unit)", 16)
        )
        print(String(repeating: "-", count: showBytes ? 96 : 86))
        for row in rows {
            print(
                padded(row.name, 44, left: true) + padded(format(row.operationsPerSecond, decimals: 0), 14)
                    + padded(format(row.nanosecondsPerOperation, decimals: 1), 12)
                    + (showBytes ? padded(format(row.bytesPerSecond / 1e6, decimals: 0), 10) : "")
                    + padded(row.allocationsPerOperation < 0 ? "n/a" : format(row.allocationsPerOperation, decimals: 3), 16)
            )
        }
    }
}

/// Pads `text` to `width` columns (on the left by default, for numbers).
public func padded(_ text: String, _ width: Int, left: Bool = false) -> String {
    let padding = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + padding : padding + text
}

/// Formats `value` with exactly `decimals` digits after the point.
public func format(_ value: Double, decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let fraction = text[text.index(after: dot)...].count
        if fraction < decimals { text += String(repeating: "0", count: decimals - fraction) }
        if decimals == 0 { text = String(text[..<dot]) }
    }
    return text
}

/// Runs the allocation counter's self-check (one allocation per array) and answers whether it counts.
public func allocationCounterSelfCheck() -> (works: Bool, counted: Int) {
    let installed = installAllocationCounter()
    let counted = countingAllocations {
        for index in 0..<1_000 { sink &+= [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 1 + index).count }
    }
    return (installed && counted >= 1_000, counted)
}
