// MARK: - Log-linear latency histogram

/// A log-linear histogram of nanosecond values (HdrHistogram's layout, fixed precision): values below 128
/// are exact; above, each power of two is split into 64 linear sub-buckets, so a recorded value is known to
/// within 1/64 (1.6%). Recording is a shift, a count of leading zeros and an increment; no allocation.
///
/// ```
/// index 0..<128          : value = index
/// index 128 + 64·(e−7) + m : values [ (64+m)·2^(e−6), (65+m)·2^(e−6) ), e = floor(log2 value) ≥ 7
/// ```
struct Histogram {
    static let subBucketBits = 6
    static let bucketCount = 128 + 64 * (64 - 7)

    private(set) var counts: [UInt64]
    private(set) var total: UInt64 = 0
    private(set) var maximum: UInt64 = 0
    private(set) var minimum: UInt64 = .max
    private(set) var sum: Double = 0

    init() { counts = [UInt64](repeating: 0, count: Histogram.bucketCount) }

    @inline(__always)
    static func index(_ value: UInt64) -> Int {
        if value < 128 { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // >= 7
        let shift = exponent - subBucketBits
        let top = Int(value >> UInt64(shift))  // 64...127
        return 128 + 64 * (exponent - 7) + (top - 64)
    }

    /// The midpoint of the values bucket `index` holds.
    static func value(at index: Int) -> UInt64 {
        if index < 128 { return UInt64(index) }
        let offset = index - 128
        let exponent = offset / 64 + 7
        let top = UInt64(offset % 64 + 64)
        let shift = UInt64(exponent - subBucketBits)
        return (top << shift) + ((1 << shift) >> 1)
    }

    @inline(__always)
    mutating func record(_ value: UInt64) {
        counts[Histogram.index(value)] &+= 1
        total &+= 1
        sum += Double(value)
        if value > maximum { maximum = value }
        if value < minimum { minimum = value }
    }

    mutating func merge(_ other: Histogram) {
        for index in 0..<counts.count { counts[index] &+= other.counts[index] }
        total &+= other.total
        sum += other.sum
        maximum = max(maximum, other.maximum)
        minimum = min(minimum, other.minimum)
    }

    /// The value at quantile `q` (0...1), or 0 when empty.
    func quantile(_ q: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = max(UInt64(1), UInt64((q * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for index in 0..<counts.count {
            seen &+= counts[index]
            if seen >= rank { return min(Histogram.value(at: index), maximum) }
        }
        return maximum
    }

    var mean: Double { total == 0 ? 0 : sum / Double(total) }
}
