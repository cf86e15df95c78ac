@testable import Compliance
import Foundation
import XCTest

final class ReportTests: XCTestCase {
    override class func tearDown() { Scenario.removeScratch() }

    func testInventoryHasOneRowPerEndpointOfThePeriod() throws {
        let report = Reports.inventory(try Scenario().analysis())
        XCTAssertEqual(report.rows.map { $0[0].text + "/" + $0[1].text }, ["dev/scratch-1", "shop/db-1", "shop/web-1"],
                       "old/legacy-1 was gone before the period")
        XCTAssertEqual(report.csv.components(separatedBy: "\r\n"), [
            "namespace,name,firstSeen,lastSeen,present,labels,labelChanges,addresses,interface,local,ingressProtectedWholePeriod,"
                + "egressProtectedWholePeriod,policies,quarantines",
            "dev,scratch-1,2026-11-02T00:00:00.000Z,2026-11-04T23:00:00.000Z,true,app=scratch,0,198.18.2.1,,false,false,false,,",
            "shop,db-1,2026-11-01T06:00:00.000Z,2026-11-03T18:00:00.000Z,false,app=db,0,198.18.1.2,pal-db1,true,true,true,shop/allow-web,",
            "shop,web-1,2026-10-20T00:00:00.000Z,2026-11-04T23:00:00.000Z,true,app=web tier=front,1,198.18.1.1; 2001:db8::1:1,pal-web1,true,"
                + "true,true,shop/allow-web; gnp:deny-egress-internet,"
                + "start=2026-11-02T12:00:00.000Z end=2026-11-02T14:00:00.000Z reason=beaconing actor=alice",
            "",
        ])
        XCTAssertEqual(report.summary.first { $0.name == "notProtectedWholePeriod" }?.value, .integer(1))
    }

    func testNetworkAccessCountsThePeersSeenInThePeriod() throws {
        let report = Reports.networkAccess(try Scenario().analysis())
        XCTAssertEqual(report.csv.components(separatedBy: "\r\n"), [
            "namespace,name,ingressProtected,egressProtected,ingressFromInternet,egressToInternet,ingressFromOtherNamespaces,"
                + "egressToOtherNamespaces,allowedFlows,deniedFlows,peersSeen",
            "dev,scratch-1,false,false,true,true,true,true,1,0,direction=ingress peer=198.51.100.7 peerType=network allowed=1 denied=0",
            "shop,db-1,true,true,false,false,false,false,2,1,direction=ingress peer=198.51.100.7 peerType=network allowed=0 denied=1; "
                + "direction=ingress peer=shop/web-1 peerType=workload allowed=2 denied=0",
            "shop,web-1,true,true,true,false,true,false,3,1,direction=egress peer=203.0.113.9 peerType=network allowed=0 denied=1; "
                + "direction=egress peer=shop/db-1 peerType=workload allowed=2 denied=0; "
                + "direction=ingress peer=203.0.113.50 peerType=network allowed=1 denied=0",
            "",
        ])
    }

    func testPolicyAuditListsEveryPolicyChangeOfThePeriod() throws {
        let report = Reports.policyAudit(try Scenario().analysis())
        XCTAssertEqual(report.summary.map(\.name), ["created", "modified", "deleted", "notApplied", "rejectedFiles", "byActor"])
        XCTAssertEqual(report.summary.prefix(5).map(\.value), [.integer(1), .integer(1), .integer(1), .integer(1), .integer(0)])
        XCTAssertEqual(report.summary[5].value, .record([ReportField("alice", .integer(2)), ReportField("bob", .integer(2))]))
        XCTAssertEqual(report.rows.map { row in ["seq", "change", "kind", "object", "actor", "outcome"].map { report.columns.firstIndex(of: $0).map { row[$0].text } ?? "?" } }, [
            ["3", "created", "NetworkPolicy", "shop/allow-web", "alice", "applied"],
            ["5", "modified", "NetworkPolicy", "shop/allow-web", "bob", "applied"],
            ["6", "created", "GlobalNetworkPolicy", "deny-egress-internet", "bob", "failed"],
            ["9", "deleted", "NetworkPolicy", "shop/old-policy", "alice", "applied"],
        ])
        let modified = report.row(1)
        XCTAssertEqual(modified["diff"], .text("- ingress[0].ports[0].port: 80\n+ ingress[0].ports[0].port: 8080"))
        XCTAssertEqual(modified["time"], .text("2026-11-02T09:30:00.000Z"))
        XCTAssertEqual(report.row(2)["error"], .text("kernel rejected the batch: No such file or directory"))
        // The diff's line break stays inside one quoted CSV field.
        XCTAssertTrue(report.csv.contains("\"- ingress[0].ports[0].port: 80\n+ ingress[0].ports[0].port: 8080\"\r\n"))
    }

    func testJSONKeepsTypesAndColumnOrder() throws {
        let json = Reports.inventory(try Scenario().analysis()).json
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let rows = try XCTUnwrap(object["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(rows[2]["labelChanges"] as? Int, 1)
        XCTAssertEqual(rows[0]["ingressProtectedWholePeriod"] as? Bool, false)
        XCTAssertTrue(rows[0]["interface"] is NSNull)
        XCTAssertEqual(rows[2]["addresses"] as? [String], ["198.18.1.1", "2001:db8::1:1"])
        XCTAssertTrue(json.hasPrefix("{\n  \"report\": \"inventory\",\n  \"title\": \"Endpoint inventory\",\n  \"period\": {\n    \"from\": \"2026-11-01T00:00:00.000Z\""))
        let namespace = try XCTUnwrap(json.range(of: "\"namespace\": \"dev\"")), name = try XCTUnwrap(json.range(of: "\"name\": \"scratch-1\""))
        XCTAssertLessThan(namespace.lowerBound, name.lowerBound, "row keys in column order")
    }

    func testDailyCoverageAndChanges() throws {
        let analysis = try Scenario().analysis()
        XCTAssertEqual(analysis.dailyProtection.map { "\($0.day) \($0.protected)/\($0.endpoints)" },
                       ["2026-11-01 2/2", "2026-11-02 2/3", "2026-11-03 2/3"])
        XCTAssertEqual(analysis.dailyPolicyChanges.map { "\($0.day) \($0.created) \($0.modified) \($0.deleted)" },
                       ["2026-11-01 1 0 0", "2026-11-02 1 1 0", "2026-11-03 0 0 1"])
    }

    func testHTMLTablePageEscapesAndShowsEveryRow() throws {
        let html = Reports.policyAudit(try Scenario().analysis()).html
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertEqual(html.components(separatedBy: "<tr>").count - 1, 5, "a header and four changes")
        XCTAssertTrue(html.contains("<span class=\"add\">+ ingress[0].ports[0].port: 8080</span>"))
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "no fetches")
    }
}
