import XCTest
@testable import PolicyModel

final class IPAddressTests: XCTestCase {
    func testIPv4RoundTrip() {
        XCTAssertEqual(IPAddress("198.18.3.17")?.description, "198.18.3.17")
        XCTAssertEqual(IPAddress("0.0.0.0")?.bytes, [0, 0, 0, 0])
        XCTAssertEqual(IPAddress("255.255.255.255")?.family, .ipv4)
    }

    func testIPv4Rejects() {
        for text in ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.-4", "1..3.4", "a.b.c.d", " 1.2.3.4"] {
            XCTAssertNil(IPAddress(text), text)
        }
    }

    func testIPv6CompressionFollowsRFC5952() {
        let cases: [(String, String)] = [
            ("2001:db8:3:0:0:0:0:11", "2001:db8:3::11"),
            ("2001:0DB8::0001", "2001:db8::1"),
            ("0:0:0:0:0:0:0:0", "::"),
            ("::1", "::1"),
            ("fe80::", "fe80::"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),   // a single zero group is not compressed
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),             // the longest run is compressed
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),       // the first of equal runs
            ("::ffff:192.0.2.1", "::ffff:c000:201"),
        ]
        for (input, printed) in cases {
            XCTAssertEqual(IPAddress(input)?.description, printed, input)
            XCTAssertEqual(IPAddress(printed), IPAddress(input), printed)
        }
    }

    func testIPv6Rejects() {
        for text in ["1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::1", "::1%eth0", ":1:2:3:4:5:6:7"] {
            XCTAssertNil(IPAddress(text), text)
        }
    }

    func testOrdering() {
        XCTAssertLessThan(ip("10.0.0.2"), ip("10.0.0.10"))
        XCTAssertLessThan(ip("255.255.255.255"), ip("::"))
    }

    func testCIDRParsing() {
        XCTAssertEqual(CIDR("198.51.100.0/24")?.description, "198.51.100.0/24")
        XCTAssertEqual(CIDR("2001:db8::/32")?.description, "2001:db8::/32")
        XCTAssertEqual(CIDR("10.0.0.1")?.description, "10.0.0.1/32")
        XCTAssertNil(CIDR("10.0.0.1/24"), "host bits set")
        XCTAssertEqual(CIDR("10.0.0.1/24", strict: false)?.description, "10.0.0.0/24")
        XCTAssertNil(CIDR("10.0.0.0/33"))
        XCTAssertNil(CIDR("10.0.0.0/"))
        XCTAssertNil(CIDR("10.0.0.0/-1"))
        XCTAssertNil(CIDR("10.0.0.0/8/8"))
        XCTAssertNil(CIDR("::/129"))
        XCTAssertEqual(CIDR("0.0.0.0/0")?.maskBytes, [0, 0, 0, 0])
        XCTAssertEqual(CIDR("10.0.0.0/12")?.maskBytes, [255, 240, 0, 0])
    }

    func testCIDRContains() {
        let block = cidr("10.0.0.0/16")
        XCTAssertTrue(block.contains(ip("10.0.255.1")))
        XCTAssertFalse(block.contains(ip("10.1.0.0")))
        XCTAssertFalse(block.contains(ip("::a00:1")))
        XCTAssertTrue(block.contains(cidr("10.0.128.0/17")))
        XCTAssertTrue(block.contains(block))
        XCTAssertFalse(block.contains(cidr("10.0.0.0/8")))
    }

    func testSubtracting() {
        XCTAssertEqual(cidr("198.51.100.0/24").subtracting([cidr("198.51.100.128/25")]), [cidr("198.51.100.0/25")])
        XCTAssertEqual(cidr("10.0.0.0/30").subtracting([cidr("10.0.0.1/32")]),
                       [cidr("10.0.0.0/32"), cidr("10.0.0.2/31")])
        XCTAssertEqual(cidr("10.0.0.0/8").subtracting([]), [cidr("10.0.0.0/8")])
        XCTAssertEqual(cidr("10.0.0.0/8").subtracting([cidr("0.0.0.0/0")]), [])
        XCTAssertEqual(cidr("10.0.0.0/8").subtracting([cidr("2001:db8::/32"), cidr("11.0.0.0/8")]),
                       [cidr("10.0.0.0/8")], "other families and disjoint prefixes do not subtract")
        XCTAssertEqual(cidr("2001:db8::/32").subtracting([cidr("2001:db8:8000::/33"), cidr("2001:db8::/34")]),
                       [cidr("2001:db8:4000::/34")])
    }
}
