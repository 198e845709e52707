import MQTTCodec

// MARK: - Topic trie (shared storage for subscriptions, interest and retained messages)

/// What a ``TopicTrie`` stores at each node.
public protocol TopicTriePayload {
    /// An empty payload, as a new node starts with.
    init()
    /// Whether the payload holds nothing, so that a childless node carrying it can be pruned.
    var isEmpty: Bool { get }
}

/// A trie over topic levels, one node per level, whose nodes live in a slab (an array addressed by `Int32`)
/// rather than as class instances: no ARC traffic while walking, and the whole structure is three arrays and
/// one dictionary, plainly serialisable.
///
/// The trie is the storage under ``SubscriptionTrie`` and ``InterestTable`` (keys are topic filters, walked with
/// a topic name) and ``RetainedStore`` (keys are topic names, walked with a topic filter).
///
/// ```
///   root ─┬─ "a" ─┬─ "b"        literal children: edges[(parent, level bytes)] -> child,
///         │       ├─ "+"        plus a doubly linked sibling list for enumeration
///         │       └─ "#"        '+' and '#' children: also direct fields on the parent
///         └─ ""  ── "x"         empty levels are ordinary literal levels ("/x")
/// ```
///
/// Level bytes are stored as their own small arrays; lookups hash the level's bytes in place (an `ArraySlice`
/// of the caller's array), so walking allocates nothing.
///
/// Depth: matching recurses once per topic level along paths that exist in the trie. The broker bounds the
/// number of levels of an accepted filter or topic (a `Limits` value), which bounds the recursion.
public struct TopicTrie<Payload: TopicTriePayload> {
    /// A node's slot in the slab. `-1` means none.
    public typealias NodeIndex = Int32

    /// The index of "no node".
    @inlinable
    public static var noNode: NodeIndex { -1 }

    /// The root's index. The root stands for the empty prefix; it never carries a payload.
    @inlinable
    public static var rootNode: NodeIndex { 0 }

    @usableFromInline
    enum Kind: UInt8 {
        case root
        case literal
        case plus
        case hash
        case free
    }

    @usableFromInline
    struct Node {
        /// The level's bytes for a literal node; empty otherwise.
        @usableFromInline var level: ArraySlice<UInt8>
        @usableFromInline var kind: Kind
        @usableFromInline var parent: NodeIndex
        @usableFromInline var plusChild: NodeIndex
        @usableFromInline var hashChild: NodeIndex
        @usableFromInline var literalChildCount: Int32
        @usableFromInline var firstChild: NodeIndex
        @usableFromInline var previousSibling: NodeIndex
        @usableFromInline var nextSibling: NodeIndex
        @usableFromInline var payload: Payload

        @inlinable
        init(level: ArraySlice<UInt8>, kind: Kind, parent: NodeIndex) {
            self.level = level
            self.kind = kind
            self.parent = parent
            self.plusChild = TopicTrie.noNode
            self.hashChild = TopicTrie.noNode
            self.literalChildCount = 0
            self.firstChild = TopicTrie.noNode
            self.previousSibling = TopicTrie.noNode
            self.nextSibling = TopicTrie.noNode
            self.payload = Payload()
        }
    }

    /// A literal edge: parent node and the child's level bytes.
    @usableFromInline
    struct EdgeKey: Hashable {
        @usableFromInline var parent: NodeIndex
        @usableFromInline var level: ArraySlice<UInt8>

        @inlinable
        init(parent: NodeIndex, level: ArraySlice<UInt8>) {
            self.parent = parent
            self.level = level
        }

        @inlinable
        static func == (lhs: EdgeKey, rhs: EdgeKey) -> Bool {
            lhs.parent == rhs.parent && lhs.level.elementsEqual(rhs.level)
        }

        @inlinable
        func hash(into hasher: inout Hasher) {
            hasher.combine(parent)
            // One bulk combine instead of one per byte.
            level.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    @usableFromInline var nodes: [Node]
    @usableFromInline var freeNodes: [NodeIndex]
    @usableFromInline var edges: [EdgeKey: NodeIndex]

    /// An empty trie: the root alone.
    @inlinable
    public init() {
        nodes = [Node(level: [], kind: .root, parent: TopicTrie.noNode)]
        freeNodes = []
        edges = [:]
    }

    /// The number of live nodes, the root included (a measure of memory, and of pruning in tests).
    @inlinable
    public var nodeCount: Int { nodes.count - freeNodes.count }

    // MARK: Levels

    /// The end of the level that starts at `start`: the index of the next `/`, or `bytes.endIndex`.
    @inlinable
    static func levelEnd(_ bytes: ArraySlice<UInt8>, from start: Int) -> Int {
        var index = start
        let end = bytes.endIndex
        while index < end && bytes[index] != UInt8(ascii: "/") { index += 1 }
        return index
    }

    @inlinable
    static func isSingleByte(_ level: ArraySlice<UInt8>, _ byte: UInt8) -> Bool {
        level.count == 1 && level.first == byte
    }

    // MARK: Payload access

    /// The payload of `node`.
    @inlinable
    public subscript(payloadOf node: NodeIndex) -> Payload {
        _read { yield nodes[Int(node)].payload }
        _modify { yield &nodes[Int(node)].payload }
    }

    // MARK: Insert, find, prune

    /// The node for `path` (topic levels separated by `/`; `+` and `#` levels are wildcard nodes), created
    /// with empty payloads along the way where missing.
    /// - Complexity: O(levels) hash lookups; allocates only for new nodes.
    @inlinable
    public mutating func findOrCreate(_ path: ArraySlice<UInt8>) -> NodeIndex {
        var node = TopicTrie.rootNode
        var start = path.startIndex
        while start <= path.endIndex {
            let end = TopicTrie.levelEnd(path, from: start)
            let level = path[start..<end]
            node = childOrCreate(of: node, level: level)
            start = end + 1
        }
        return node
    }

    /// The node for `path`, or `nil` where it does not exist.
    /// - Complexity: O(levels) hash lookups; no allocation.
    @inlinable
    public func find(_ path: ArraySlice<UInt8>) -> NodeIndex? {
        var node = TopicTrie.rootNode
        var start = path.startIndex
        while start <= path.endIndex {
            let end = TopicTrie.levelEnd(path, from: start)
            let child = self.child(of: node, level: path[start..<end])
            if child == TopicTrie.noNode { return nil }
            node = child
            start = end + 1
        }
        return node
    }

    @inlinable
    func child(of node: NodeIndex, level: ArraySlice<UInt8>) -> NodeIndex {
        if TopicTrie.isSingleByte(level, UInt8(ascii: "+")) { return nodes[Int(node)].plusChild }
        if TopicTrie.isSingleByte(level, UInt8(ascii: "#")) { return nodes[Int(node)].hashChild }
        return literalChild(of: node, level: level)
    }

    /// Up to this many literal children, a lookup compares levels along the sibling list instead of hashing.
    /// Most trie nodes have one child ("devices/1234/cmd"): a byte comparison is cheaper than SipHash plus a
    /// probe (measured: 100k single-child paths matched in about half the time).
    @inlinable
    static var linearChildCountMax: Int32 { 4 }

    /// The literal child of `node` whose level is `level`, or ``noNode``.
    @inlinable
    func literalChild(of node: NodeIndex, level: ArraySlice<UInt8>) -> NodeIndex {
        let literalCount = nodes[Int(node)].literalChildCount
        if literalCount == 0 { return TopicTrie.noNode }
        if literalCount > TopicTrie.linearChildCountMax {
            return edges[EdgeKey(parent: node, level: level)] ?? TopicTrie.noNode
        }
        var child = nodes[Int(node)].firstChild
        while child != TopicTrie.noNode {
            if nodes[Int(child)].kind == .literal && TopicTrie.bytesEqual(nodes[Int(child)].level, level) {
                return child
            }
            child = nodes[Int(child)].nextSibling
        }
        return TopicTrie.noNode
    }

    @inlinable
    static func bytesEqual(_ left: ArraySlice<UInt8>, _ right: ArraySlice<UInt8>) -> Bool {
        if left.count != right.count { return false }
        var leftIndex = left.startIndex
        var rightIndex = right.startIndex
        while leftIndex < left.endIndex {
            if left[leftIndex] != right[rightIndex] { return false }
            leftIndex += 1
            rightIndex += 1
        }
        return true
    }

    @usableFromInline
    mutating func childOrCreate(of node: NodeIndex, level: ArraySlice<UInt8>) -> NodeIndex {
        let existing = child(of: node, level: level)
        if existing != TopicTrie.noNode { return existing }
        let kind: Kind
        var ownLevel: ArraySlice<UInt8> = []
        if TopicTrie.isSingleByte(level, UInt8(ascii: "+")) {
            kind = .plus
        } else if TopicTrie.isSingleByte(level, UInt8(ascii: "#")) {
            kind = .hash
        } else {
            kind = .literal
            // Own copy: a slice of the caller's array would keep the whole filter alive.
            ownLevel = ArraySlice(Array(level))
        }
        let fresh = Node(level: ownLevel, kind: kind, parent: node)
        let index: NodeIndex
        if let reused = freeNodes.popLast() {
            index = reused
            nodes[Int(index)] = fresh
        } else {
            precondition(nodes.count < Int(Int32.max), "topic trie node count overflow")
            index = NodeIndex(nodes.count)
            nodes.append(fresh)
        }
        switch kind {
        case .plus: nodes[Int(node)].plusChild = index
        case .hash: nodes[Int(node)].hashChild = index
        default:
            nodes[Int(node)].literalChildCount += 1
            edges[EdgeKey(parent: node, level: ownLevel)] = index
        }
        // Link at the head of the parent's sibling list.
        let head = nodes[Int(node)].firstChild
        nodes[Int(index)].nextSibling = head
        if head != TopicTrie.noNode { nodes[Int(head)].previousSibling = index }
        nodes[Int(node)].firstChild = index
        return index
    }

    /// Removes `node` and then each ancestor in turn while it has an empty payload and no children.
    /// Call after emptying a payload.
    /// - Complexity: O(levels).
    public mutating func pruneIfEmpty(_ node: NodeIndex) {
        var current = node
        while current != TopicTrie.rootNode {
            let slot = Int(current)
            guard nodes[slot].firstChild == TopicTrie.noNode, nodes[slot].payload.isEmpty else { return }
            let parent = nodes[slot].parent
            switch nodes[slot].kind {
            case .plus:
                nodes[Int(parent)].plusChild = TopicTrie.noNode
            case .hash:
                nodes[Int(parent)].hashChild = TopicTrie.noNode
            case .literal:
                let removed = edges.removeValue(forKey: EdgeKey(parent: parent, level: nodes[slot].level))
                assert(removed == current, "topic trie edge index out of step")
                nodes[Int(parent)].literalChildCount -= 1
            case .root, .free:
                preconditionFailure("pruning a node that is not a child")
            }
            let previous = nodes[slot].previousSibling
            let next = nodes[slot].nextSibling
            if previous != TopicTrie.noNode {
                nodes[Int(previous)].nextSibling = next
            } else {
                nodes[Int(parent)].firstChild = next
            }
            if next != TopicTrie.noNode { nodes[Int(next)].previousSibling = previous }
            // Release the level bytes and payload now rather than when the slot is reused.
            nodes[slot] = Node(level: [], kind: .free, parent: TopicTrie.noNode)
            freeNodes.append(current)
            current = parent
        }
    }

    // MARK: Walking a trie of filters with a topic

    /// Visits the payload of every node whose filter matches `topic` (a trie whose keys are topic filters).
    ///
    /// Rules: `+` matches exactly one level (including an empty one); `#` matches the rest, including no level
    /// at all ("a/#" matches "a"); [MQTT-4.7.2-1] a filter whose first level is a wildcard does not match a
    /// topic that starts with `$`.
    ///
    /// Cost: at each topic level, each live node costs at most one hash lookup (literal child) plus two field
    /// reads (`+`, `#`). Without `+` filters the walk is a single path: L lookups for a topic of L levels.
    /// Each `+` level in the trie can fork it, so the worst case is bounded by the number of matching filters
    /// times L. No allocation.
    @inlinable
    public func forEachFilterMatching(_ topic: TopicName, _ body: (borrowing Payload) -> Void) {
        let bytes = topic.bytes[...]
        visitFilters(node: TopicTrie.rootNode, topic: bytes, start: bytes.startIndex, dollar: topic.isDollarTopic,
                     body)
    }

    @inlinable
    func visitFilters(
        node: NodeIndex, topic: ArraySlice<UInt8>, start: Int, dollar: Bool, _ body: (borrowing Payload) -> Void
    ) {
        let slot = Int(node)
        // [MQTT-4.7.2-1] Wildcards at the first level do not match topics beginning with '$'.
        let wildcardsAllowed = !(dollar && node == TopicTrie.rootNode)
        let hashChild = nodes[slot].hashChild
        if hashChild != TopicTrie.noNode && wildcardsAllowed {
            // '#' matches every remaining level, and also none (the parent level).
            body(nodes[Int(hashChild)].payload)
        }
        if start > topic.endIndex {
            // Every topic level is consumed: this node's own filter matches exactly.
            body(nodes[slot].payload)
            return
        }
        let end = TopicTrie.levelEnd(topic, from: start)
        let plusChild = nodes[slot].plusChild
        if plusChild != TopicTrie.noNode && wildcardsAllowed {
            visitFilters(node: plusChild, topic: topic, start: end + 1, dollar: dollar, body)
        }
        let child = literalChild(of: node, level: topic[start..<end])
        if child != TopicTrie.noNode {
            visitFilters(node: child, topic: topic, start: end + 1, dollar: dollar, body)
        }
    }

    // MARK: Walking a trie of topics with a filter

    /// Visits the payload of every node whose topic matches `filter` (a trie whose keys are topic names), with
    /// the same rules as ``forEachFilterMatching(_:_:)``. `filter` is the matching part of a filter (without
    /// any `$share/{group}/` prefix). The root's payload is never visited.
    ///
    /// Cost: literal filter levels are one hash lookup each; `+` visits every child; `#` visits the whole
    /// subtree, iteratively through parent and sibling links (no stack, no allocation).
    @inlinable
    public func forEachTopicMatching(_ filter: ArraySlice<UInt8>, _ body: (borrowing Payload) -> Void) {
        visitTopics(node: TopicTrie.rootNode, filter: filter, start: filter.startIndex, body)
    }

    @inlinable
    func visitTopics(node: NodeIndex, filter: ArraySlice<UInt8>, start: Int, _ body: (borrowing Payload) -> Void) {
        let slot = Int(node)
        if start > filter.endIndex {
            body(nodes[slot].payload)
            return
        }
        let end = TopicTrie.levelEnd(filter, from: start)
        let level = filter[start..<end]
        let atRoot = node == TopicTrie.rootNode
        if TopicTrie.isSingleByte(level, UInt8(ascii: "#")) {
            // "a/#" matches "a" itself; the root stands for no topic.
            if !atRoot { body(nodes[slot].payload) }
            visitSubtree(below: node, skipDollar: atRoot, body)
        } else if TopicTrie.isSingleByte(level, UInt8(ascii: "+")) {
            var child = nodes[slot].firstChild
            while child != TopicTrie.noNode {
                // [MQTT-4.7.2-1] A filter starting with a wildcard does not match topics beginning with '$'.
                if !(atRoot && nodes[Int(child)].level.first == UInt8(ascii: "$")) {
                    visitTopics(node: child, filter: filter, start: end + 1, body)
                }
                child = nodes[Int(child)].nextSibling
            }
        } else {
            let child = literalChild(of: node, level: level)
            if child != TopicTrie.noNode { visitTopics(node: child, filter: filter, start: end + 1, body) }
        }
    }

    /// Visits every node strictly below `top`, in pre-order, walking parent and sibling links.
    @inlinable
    func visitSubtree(below top: NodeIndex, skipDollar: Bool, _ body: (borrowing Payload) -> Void) {
        var node = nodes[Int(top)].firstChild
        while node != TopicTrie.noNode {
            let skip = skipDollar && nodes[Int(node)].parent == top
                && nodes[Int(node)].level.first == UInt8(ascii: "$")
            if !skip {
                body(nodes[Int(node)].payload)
                let child = nodes[Int(node)].firstChild
                if child != TopicTrie.noNode {
                    node = child
                    continue
                }
            }
            // Climb until a node with a next sibling, stopping at `top`.
            while node != top && nodes[Int(node)].nextSibling == TopicTrie.noNode {
                node = nodes[Int(node)].parent
            }
            if node == top { return }
            node = nodes[Int(node)].nextSibling
        }
    }

    // MARK: Consistency (tests)

    /// Checks the structure's invariants (edge index, sibling links, counts, no prunable node left).
    /// Expensive: O(nodes). Meant for tests.
    public func checkInvariants() -> String? {
        var live = 0
        var literalEdges = 0
        for (slot, node) in nodes.enumerated() {
            if node.kind == .free { continue }
            live += 1
            let index = NodeIndex(slot)
            if node.kind != .root {
                if node.firstChild == TopicTrie.noNode && node.payload.isEmpty { return "unpruned node \(slot)" }
                let parent = nodes[Int(node.parent)]
                switch node.kind {
                case .plus: if parent.plusChild != index { return "plus link \(slot)" }
                case .hash: if parent.hashChild != index { return "hash link \(slot)" }
                default:
                    literalEdges += 1
                    if edges[EdgeKey(parent: node.parent, level: node.level)] != index { return "edge \(slot)" }
                }
            }
            var literals: Int32 = 0
            var child = node.firstChild
            var previous = TopicTrie.noNode
            while child != TopicTrie.noNode {
                if nodes[Int(child)].parent != index { return "child parent \(child)" }
                if nodes[Int(child)].previousSibling != previous { return "sibling link \(child)" }
                if nodes[Int(child)].kind == .literal { literals += 1 }
                previous = child
                child = nodes[Int(child)].nextSibling
            }
            if literals != node.literalChildCount { return "literal count \(slot)" }
        }
        if live != nodeCount { return "node count" }
        if literalEdges != edges.count { return "edge count" }
        return nil
    }
}
