import Foundation
import XCTest

/// The short version of launch/network-chaos.sh: lost packets, a partition that heals, one that
/// lasts (under the supervisor) and thin links, between 3 namespace hosts; every run that finishes
/// must end on the bits of one process.
final class NetworkChaosTests: XCTestCase {
  func testNetworkFaultsEndOnTheBitsOfOneProcess() throws {
    let data = try Harness.smallRealDataset()
    guard getuid() == 0 else { throw XCTSkip("network namespaces, nftables and tc need root") }
    let check = try Harness.run(MultiHostTests.script("netns-hosts.sh"), ["check"], timeout: 30)
    guard check.status == 0 else { throw XCTSkip("this kernel or sandbox does not allow network namespaces") }
    let out = temporaryDirectory()
    let result = try Harness.run(
      MultiHostTests.script("network-chaos.sh"), ["--short", "--out", out, "--data", data], timeout: 900,
      environment: ["VAE_DIST_BINARY": try Harness.requireBinary()])
    print(result.output.split(separator: "\n").filter { $0.hasPrefix("network-chaos:") }.joined(separator: "\n"))
    XCTAssertEqual(result.status, 0, result.all)
    for name in ["loss", "heal", "partition"] {
      let line = result.output.split(separator: "\n").first { $0.hasPrefix("network-chaos: \(name) ") } ?? ""
      XCTAssertTrue(line.contains("exit 0"), "\(name): \(line)")
      XCTAssertTrue(line.contains("bits same"), "\(name): \(line)")
    }
    let partition = try String(contentsOfFile: out + "/partition.log", encoding: .utf8)
    XCTAssertTrue(partition.contains("rank 2 on 10.213.0.13 lost"), "the supervisor names the lost rank:\n\(partition)")
    XCTAssertTrue(result.output.contains("network-chaos: thin "), result.output)
  }
}
