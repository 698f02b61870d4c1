import Foundation
import VAEDistributed
import XCTest

/// The protocol between ranks on an in-process group: what one rank finds reaches every rank.
final class AgreementTests: XCTestCase {
  struct Broken: Error, CustomStringConvertible, ClassifiedError {
    var description: String { "the file /data/x is broken" }
    var failureKind: FailureKind { .data }
  }

  func testTogetherReportsTheLowestFailingRankEverywhere() {
    for failing in [[2], [1, 3], [0]] {
      let group = InProcessGroup(size: 4)
      let outcomes = PerRank<Result<Int, RunFailure>?>(4, nil)
      onThreads(4) { rank in
        let communicator = InProcessCommunicator(group: group, rank: rank)
        outcomes[rank] = Result {
          try communicator.together("a test") { () -> Int in
            if failing.contains(rank) { throw Broken() }
            return rank * 10
          }
        }.mapError { $0 as! RunFailure }
      }
      for rank in 0..<4 {
        guard case .failure(let failure) = outcomes[rank]! else { return XCTFail("rank \(rank) did not fail (failing \(failing))") }
        XCTAssertEqual(failure.rank, failing.min()!)
        XCTAssertEqual(failure.kind, .data)
        XCTAssertTrue(failure.agreed)
        XCTAssertEqual(failure.message, "the file /data/x is broken")
      }
    }
  }

  func testTogetherReturnsEachRanksValueWhenAllSucceed() {
    let group = InProcessGroup(size: 3)
    let values = PerRank<Int?>(3, nil)
    onThreads(3) { rank in
      values[rank] = try? InProcessCommunicator(group: group, rank: rank).together("a test") { rank + 1 }
    }
    XCTAssertEqual((0..<3).map { values[$0] }, [1, 2, 3])
  }

  /// Each entry's smallest and largest over the ranks, on every rank, the ends of Int64 included
  /// (negating Int64.min gives Int64.min: a MAX of negations missed it as a low).
  func testExtremesOverTheRanksIncludeTheEndsOfInt64() {
    let group = InProcessGroup(size: 3)
    let inputs: [[Int64]] = [[5, .min, 7, 0], [5, 3, .max, 0], [5, -2, 7, -1]]
    let results = PerRank<(low: [Int64], high: [Int64])?>(3, nil)
    onThreads(3) { rank in
      results[rank] = try? InProcessCommunicator(group: group, rank: rank).extremes(of: inputs[rank], phase: "a test")
    }
    for rank in 0..<3 {
      XCTAssertEqual(results[rank]?.low, [5, .min, 7, -1], "rank \(rank)")
      XCTAssertEqual(results[rank]?.high, [5, 3, .max, 0], "rank \(rank)")
    }
  }

  /// Rank zero's answer reaches every rank, also when rank zero works longer than many heartbeats.
  func testRootDecidesSendsTheResultAndHeartbeatsWhileWorking() {
    let group = InProcessGroup(size: 3)
    let values = PerRank<String?>(3, nil)
    onThreads(3) { rank in
      let communicator = InProcessCommunicator(group: group, rank: rank)
      values[rank] = try? communicator.rootDecides("a test", heartbeat: 0.01) { () -> String in
        usleep(100_000)
        return "decided by \(rank)"
      }
    }
    XCTAssertEqual((0..<3).map { values[$0] }, ["decided by 0", "decided by 0", "decided by 0"])
  }

  func testRootDecidesSendsRankZerosErrorToEveryRank() {
    let group = InProcessGroup(size: 2)
    let failures = PerRank<RunFailure?>(2, nil)
    onThreads(2) { rank in
      do {
        _ = try InProcessCommunicator(group: group, rank: rank).rootDecides("a test", heartbeat: 0.01) { () -> Bool in
          usleep(30_000)
          throw Broken()
        }
      } catch {
        failures[rank] = error as? RunFailure
      }
    }
    for rank in 0..<2 {
      XCTAssertEqual(failures[rank]?.kind, .data)
      XCTAssertEqual(failures[rank]?.agreed, true)
      XCTAssertEqual(failures[rank]?.message, "the file /data/x is broken")
    }
  }

  func testGathersAreInRankOrder() {
    let group = InProcessGroup(size: 3)
    let numbers = PerRank<[Int]?>(3, nil), texts = PerRank<[String]?>(3, nil)
    onThreads(3) { rank in
      let communicator = InProcessCommunicator(group: group, rank: rank)
      numbers[rank] = try? communicator.gather(rank * 7, phase: "test")
      texts[rank] = try? communicator.gather("host-\(rank)", phase: "test")
    }
    for rank in 0..<3 {
      XCTAssertEqual(numbers[rank], [0, 7, 14])
      XCTAssertEqual(texts[rank], ["host-0", "host-1", "host-2"])
    }
  }

  /// The exit statuses and restart decisions docs/distributed.md and the README list (scripts and the
  /// supervisor depend on the numbers).
  func testExitStatusesAreTheDocumentedOnes() {
    let documented: [(FailureKind, Int32, restartable: Bool)] = [
      (.internalError, 1, true), (.configuration, 2, false), (.peerLost, 3, true), (.data, 4, false),
      (.output, 5, false), (.nonFinite, 6, false), (.refused, 7, false),
    ]
    XCTAssertEqual(documented.count, FailureKind.allCases.count)
    for (kind, status, restartable) in documented {
      XCTAssertEqual(kind.exitStatus, status, "\(kind)")
      XCTAssertEqual(kind.restartable, restartable, "\(kind)")
    }
  }
}
