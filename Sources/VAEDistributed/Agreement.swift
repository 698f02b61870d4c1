import Foundation
import VAECore

// The protocol between ranks: how they learn what one of them found, decided or failed at.
//
// Every exchange below is a collective that every rank reaches, in the same order. The order of a
// training run (VAETraining's Trainer.run) is:
//
//    1. rootDecides  "the output directory"      rank 0 claims --out (or refuses, or moves a run aside)
//    2. together     "loading the data"          every rank loads its shard, the test and validation sets
//                                                (the extremes of "done" every second until all are),
//                                                then a MIN of the failed ranks
//       allreduce    the files' counts and CRCs  every rank must have read the same data
//    3. gather       shard sizes, host names     for the banner
//    4. rootDecides  "the resume checkpoint"     with --resume: rank 0 picks the checkpoint; then
//       broadcast    parameters and moments      three broadcasts of the flat buffers
//       rootDecides  "opening the logs"          metrics.jsonl (afresh or trimmed), TensorBoard
//    5. per step:    GradientReducer.reduce      MAX of magnitudes (+ the stop flag), SUM in fixed point;
//                                                with --reduction fast: a float SUM of the gradient,
//                                                then a SUM of the losses (+ the stop flag)
//                    allreduce (--check-sync)    the parameter hash, every K steps
//                    rootDecides "checkpoint"    every --checkpoint-every steps, on a stop, and before
//                                                a non-finite step ends the run
//    6. per epoch:   allreduce ×2–3              the test (z sampled, z = μ) and validation passes,
//                                                each rank a share of the micro-batches
//                    rootDecides "epoch end"     rank 0 logs, checkpoints, draws; the result is the
//                                                early-stopping decision
//    7. gather       peak memory
//    8. rootDecides  "the final files"           rank 0 writes the model and the pictures
//    9. allreduce    the likelihood estimate     a MAX of the ranks' thread counts; then each rank
//                                                a share, in rounds of max(threads, 800/k)
//                                                micro-batches a rank, up to 800 samples of each,
//                                                each round ended by a MAX of the stop flags; then
//                                                the sums
//       rootDecides  "the estimate's record"     rank 0 prints it and writes evaluation.json
//
// A run resumed at an epoch's end where early stopping stops (it had already, or a patience given
// now is already reached) goes from 4 straight to 7.
//
// `vae-dist bench` (VAEBenchmarks) runs its own short sequence: the data as in 2, gathers of the
// hosts and threads of the peak samples, then its steps (5, without checkpoints) with one SUM of the
// peak samples between some of them, and a gather of the memory report; `bench --allreduce` runs only
// its timed allreduces.
//
// A rank that meets an error inside `together` or `rootDecides` does not leave the protocol: the
// error travels to every rank in the same exchange, every rank throws the same RunFailure, and every
// rank exits with its status through MPI_Finalize — no MPI_Abort, no waiting for a stall timeout.
// Only a rank that dies or hangs still ends the job through the stall timeout. While rank zero works
// alone it says so every second (a heartbeat broadcast), and while the ranks work side by side
// (`together`: loading the data, which one rank may finish long before another) each rank still at
// work joins a round of "not done yet" every second, so that time never counts as a stall, up to
// the worker's own deadline (rootWorkTimeout, --write-timeout), past which it ends the job as a stall.

extension Communicator {
  /// Every rank's `values`' smallest and largest entries over all ranks, on every rank: one MAX
  /// allreduce of the values and their complements (~v = −v − 1 reverses the order of every Int64,
  /// Int64.min included, which negation would leave as it is).
  public func extremes(of values: [Int64], phase: @autoclosure () -> String) throws -> (low: [Int64], high: [Int64]) {
    var both = values + values.map { ~$0 }
    try both.withUnsafeMutableBufferPointer { try allreduce($0, .max, phase: phase()) }
    return (both.suffix(values.count).map { ~$0 }, Array(both.prefix(values.count)))
  }

  /// Every rank runs `body` (on a thread of its own; it must not call the communicator). If it throws
  /// on any rank, every rank throws the same RunFailure: the one of the lowest rank that failed.
  /// Until every rank is done they meet every `heartbeat` seconds in an allreduce of "done" (its
  /// extremes: all done, any done): a rank that finishes first waits in it for at most that long,
  /// never for the stall timeout. A rank still at work once another is done has `rootWorkTimeout`.
  public func together<T>(_ phase: String, heartbeat: Double = 1, _ body: @escaping () throws -> T) throws -> T {
    if size == 1 { return try agreedLocally(Result { try body() }) }
    let round = phase + " (a rank still at work)"
    let outcome = try runWithHeartbeat(phase: phase, every: heartbeat, othersWaitFromStart: false, body) {
      try extremes(of: [0], phase: round).high[0] == 1  // another rank is done: it waits for this one
    }
    // Rounds until every rank is done: all see the same extremes, so all leave after the same round.
    while try extremes(of: [1], phase: round).low[0] == 0 {}
    var failed: [Int64] = [Int64(size)]
    if case .failure = outcome { failed[0] = Int64(rank) }
    try failed.withUnsafeMutableBufferPointer { try allreduce($0, .min, phase: phase) }
    let failing = Int(failed[0])
    guard failing < size else { return try outcome.get() }
    var report = [UInt8]()
    if case .failure(let error) = outcome, rank == failing { report = Self.encode(RunFailure(error, rank: rank)) }
    let failure = try exchangeFailure(report, root: failing, phase: phase)
    throw failure
  }

  /// Rank zero runs `body` while the other ranks wait; its result, or its error, reaches every rank.
  /// `body` must not call the communicator. While it runs, rank zero broadcasts a heartbeat every
  /// `heartbeat` seconds, so the others' stall timeout counts only time in which rank zero is silent.
  public func rootDecides<T: Codable>(_ phase: String, heartbeat: Double = 1, _ body: @escaping () throws -> T) throws -> T {
    if size == 1 { return try agreedLocally(Result { try body() }) }
    // header: [state, payload length]; state 0 busy, 1 done, 2 failed.
    var header: [Int64] = [0, 0]
    if rank == 0 {
      let outcome = try runWithHeartbeat(phase: phase, every: heartbeat, othersWaitFromStart: true, body) {
        var header: [Int64] = [0, 0]
        try header.withUnsafeMutableBytes { try broadcast($0, root: 0, phase: phase + " (rank 0 at work)") }
        return true
      }
      let payload: [UInt8]
      switch outcome {
      case .success(let value):
        payload = Array(try JSONEncoder().encode(Box(value: value)))
        header = [1, Int64(payload.count)]
      case .failure(let error):
        payload = Self.encode(RunFailure(error, rank: 0))
        header = [2, Int64(payload.count)]
      }
      try header.withUnsafeMutableBytes { try broadcast($0, root: 0, phase: phase) }
      _ = try broadcastBytes(payload, count: payload.count, root: 0, phase: phase)
      if case .failure(let error) = outcome { throw Self.agreed(RunFailure(error, rank: 0)) }
      return try outcome.get()
    }
    repeat {
      try header.withUnsafeMutableBytes { try broadcast($0, root: 0, phase: phase + " (rank 0 at work)") }
    } while header[0] == 0
    let bytes = try broadcastBytes([], count: Int(header[1]), root: 0, phase: phase)
    if header[0] == 2 { throw Self.agreed(Self.decodeFailure(bytes)) }
    return try JSONDecoder().decode(Box<T>.self, from: Data(bytes)).value
  }

  /// Every rank's value, in rank order, on every rank.
  public func gather(_ value: Int, phase: String) throws -> [Int] {
    var values = [Int64](repeating: 0, count: size)
    values[rank] = Int64(value)
    try values.withUnsafeMutableBufferPointer { try allreduce($0, .sum, phase: phase) }
    return values.map(Int.init)
  }

  /// Every rank's short text (up to 63 bytes), in rank order, on every rank.
  public func gather(_ text: String, phase: String) throws -> [String] {
    let width = 64
    var bytes = [Int64](repeating: 0, count: size * width)
    for (i, byte) in text.utf8.prefix(width - 1).enumerated() { bytes[rank * width + i] = Int64(byte) }
    try bytes.withUnsafeMutableBufferPointer { try allreduce($0, .sum, phase: phase) }
    return (0..<size).map { rank in
      String(decoding: bytes[(rank * width)..<((rank + 1) * width)].prefix { $0 != 0 }.map { UInt8($0) }, as: UTF8.self)
    }
  }

  // MARK: - Pieces

  private func agreedLocally<T>(_ outcome: Result<T, Error>) throws -> T {
    do { return try outcome.get() } catch { throw Self.agreed(RunFailure(error, rank: rank)) }
  }

  private static func agreed(_ failure: RunFailure) -> RunFailure {
    var failure = failure
    failure.agreed = true
    return failure
  }

  /// `root` sends its encoded failure; every rank returns it, agreed.
  private func exchangeFailure(_ report: [UInt8], root: Int, phase: String) throws -> RunFailure {
    var length: [Int64] = [Int64(report.count)]
    try length.withUnsafeMutableBytes { try broadcast($0, root: root, phase: phase) }
    return Self.agreed(Self.decodeFailure(try broadcastBytes(report, count: Int(length[0]), root: root, phase: phase)))
  }

  /// `root`'s `count` bytes on every rank (`bytes` is read on `root` only): the payload after its length.
  private func broadcastBytes(_ bytes: [UInt8], count: Int, root: Int, phase: String) throws -> [UInt8] {
    var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: count)
    try buffer.withUnsafeMutableBytes { try broadcast($0, root: root, phase: phase) }
    return buffer
  }

  /// Runs `body` on a thread of its own and calls `beat` (the collective that says "busy"; it returns
  /// whether another rank now waits for this one) from this (the calling, MPI) thread every
  /// `interval` seconds until it is done, or until `rootWorkTimeout` has passed since another rank
  /// began to wait (from the start, with `othersWaitFromStart`): then it returns RootWorkTimedOut
  /// (exit 3) for every rank, and the stuck thread ends with the process.
  private func runWithHeartbeat<T>(
    phase: String, every interval: Double, othersWaitFromStart: Bool, _ body: @escaping () throws -> T, beat: () throws -> Bool
  ) throws -> Result<T, Error> {
    let box = OutcomeBox<T>()
    let done = DispatchSemaphore(value: 0)
    // Unchecked: `body` runs on the new thread alone while this thread only broadcasts heartbeats
    // and waits for `done`; it reads the outcome after the semaphore, which orders the two threads.
    let work = UncheckedSendable(body)
    let thread = Thread {
      box.outcome = Result { try work.value() }
      done.signal()
    }
    thread.stackSize = 16 << 20
    thread.start()
    var heartbeatError: Error?
    let started = monotonicSeconds()
    var waitedSince = othersWaitFromStart ? started : nil
    while done.wait(timeout: .now() + interval) == .timedOut {
      // Still at work past the deadline: a read or write that never returns (a hung file system).
      // The job ends as for a stall, every rank told in the usual way; the stuck thread goes with the
      // process. After a failed heartbeat no rank may be left to time out: the deadline runs from
      // the start, and the heartbeat's error is the one to report.
      if let since = heartbeatError == nil ? waitedSince : started, monotonicSeconds() - since > rootWorkTimeout {
        if let heartbeatError { throw heartbeatError }
        return .failure(RootWorkTimedOut(phase: phase, seconds: rootWorkTimeout, rank: rank))
      }
      guard heartbeatError == nil else { continue }
      do {
        if try beat() && waitedSince == nil { waitedSince = monotonicSeconds() }
      } catch {
        heartbeatError = error  // still wait for the body (up to the deadline): its result must be in before this returns
      }
    }
    if let heartbeatError { throw heartbeatError }
    return box.outcome!
  }

  private static func encode(_ failure: RunFailure) -> [UInt8] {
    Array((try? JSONEncoder().encode(FailureRecord(failure))) ?? Data())
  }

  private static func decodeFailure(_ bytes: [UInt8]) -> RunFailure {
    guard let record = try? JSONDecoder().decode(FailureRecord.self, from: Data(bytes)) else {
      return RunFailure(kind: .internalError, message: "a rank failed and its report could not be read", rank: -1, agreed: true)
    }
    return RunFailure(kind: FailureKind(rawValue: record.kind) ?? .internalError, message: record.message, rank: record.rank, agreed: true)
  }
}

private struct Box<T: Codable>: Codable { var value: T }

private struct FailureRecord: Codable {
  var kind: Int32
  var message: String
  var rank: Int
  init(_ failure: RunFailure) {
    kind = failure.kind.rawValue
    message = failure.message
    rank = failure.rank
  }
}

// Unchecked: the body's thread writes `outcome` before it signals the semaphore, and the waiting
// thread reads it only after the wait, so the two never touch it at once.
private final class OutcomeBox<T>: @unchecked Sendable {
  var outcome: Result<T, Error>?
}

/// A rank's work with a heartbeat (rank zero's alone, or every rank's side by side) outlasted
/// `rootWorkTimeout`.
struct RootWorkTimedOut: Error, ClassifiedError, CustomStringConvertible {
  var phase: String
  var seconds: Double
  var rank: Int
  var failureKind: FailureKind { .peerLost }
  var description: String {
    "rank \(rank) spent more than \(Int(seconds)) s in \(phase) without finishing (a read or write that does not "
      + "return: a hung file system?); the job ends so that no rank waits for ever. --resume continues from the last "
      + "checkpoint; raise --write-timeout if this work legitimately takes longer."
  }
}
