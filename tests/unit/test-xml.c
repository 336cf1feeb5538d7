/* Unit tests of lib/store/xml: S3, RGW and GCS response bodies, every error path, allocation
 * failure at every point. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "codec/xml.h"

#include <stdlib.h>

static int parse_str(const char *s, struct xml_doc **d)
{
    return xml_parse(s, strlen(s), d);
}

/* Parse s, expecting the error code and a message containing substr. */
static int parse_fails(const char *s, size_t len, int code, const char *substr)
{
    struct xml_doc *d = (struct xml_doc *)1;
    snap_errclear();
    int err = xml_parse(s, len, &d);
    if (err != code || d != NULL || !strstr(snap_errmsg(err), substr)) {
        fprintf(stderr, "    input %.60s: got %d \"%s\", wanted %d \"%s\"\n", s, err, snap_errmsg(err), code,
                substr);
        return 0;
    }
    return 1;
}
#define CHECK_BAD(s, substr) CHECK(parse_fails((s), strlen(s), SNAP_EFORMAT, (substr)))

TEST(xml_s3_initiate)
{
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Bucket>example-bucket</Bucket><Key>build/1b4c/memfile</Key>"
        "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
        "</InitiateMultipartUploadResult>";
    struct xml_doc *d;
    CHECK_EQ(parse_str(body, &d), 0);
    const struct xml_node *r = xml_root(d);
    CHECK_STR(xml_name(r), "InitiateMultipartUploadResult");
    CHECK(xml_is(r, "InitiateMultipartUploadResult"));
    CHECK(!xml_is(r, "Error"));
    CHECK_STR(xml_get_text(r, "UploadId"), "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
    CHECK_STR(xml_get_text(r, "Key"), "build/1b4c/memfile");
    CHECK_STR(xml_get_text(r, "Bucket"), "example-bucket");
    CHECK(xml_get_text(r, "Missing") == NULL);
    CHECK(xml_get(r, "") == r);
    char id[128];
    CHECK_EQ(xml_copy_text(r, "UploadId", id, sizeof id), 0);
    CHECK_STR(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
    char small[8];
    CHECK_ERR(xml_copy_text(r, "UploadId", small, sizeof small), SNAP_ETOOBIG, "UploadId");
    CHECK_STR(small, "");
    CHECK_ERR(xml_copy_text(r, "Upload/Id", id, sizeof id), SNAP_ENOTFOUND, "Upload/Id");
    xml_free(d);
}

TEST(xml_s3_complete_after_streamed_whitespace)
{
    /* S3 answers 200 at once and sends spaces while it assembles the object. */
    static const char body[] =
        "          \n          \n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
        "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\r\n"
        "  <Location>https://examplebucket.s3.amazonaws.com/a%2Fb?x=1&amp;y=2</Location>\r\n"
        "  <Bucket>examplebucket</Bucket>\r\n"
        "  <Key>a/b</Key>\r\n"
        "  <ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>\r\n"
        "</CompleteMultipartUploadResult>\r\n";
    struct xml_doc *d;
    CHECK_EQ(parse_str(body, &d), 0);
    const struct xml_node *r = xml_root(d);
    CHECK(xml_is(r, "CompleteMultipartUploadResult"));
    size_t n;
    CHECK_STR(xml_text(xml_get(r, "ETag"), &n), "\"3858f62230ac3c915f300c664312c11f-9\"");
    CHECK_EQ(n, 36);
    CHECK_STR(xml_get_text(r, "Location"), "https://examplebucket.s3.amazonaws.com/a%2Fb?x=1&y=2");
    CHECK_STR(xml_get_text(r, "Key"), "a/b");
    /* The root's own text is the whitespace between its children, CR LF normalised. */
    CHECK_STR(xml_text(r, &n), "\n  \n  \n  \n  \n");
    xml_free(d);
}

TEST(xml_s3_error_in_200)
{
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again."
        "</Message><RequestId>656c76696e6727732072657175657374</RequestId>"
        "<HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>";
    struct xml_doc *d;
    CHECK_EQ(parse_str(body, &d), 0);
    const struct xml_node *r = xml_root(d);
    CHECK(xml_is(r, "Error"));
    CHECK_STR(xml_get_text(r, "Code"), "InternalError");
    CHECK_STR(xml_get_text(r, "Message"), "We encountered an internal error. Please try again.");
    CHECK_STR(xml_get_text(r, "RequestId"), "656c76696e6727732072657175657374");
    CHECK_STR(xml_get_text(r, "HostId"), "Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==");
    xml_free(d);
}

TEST(xml_rgw_error_empty_message)
{
    /* Ceph RGW: an empty Message, written either way. */
    static const char *const bodies[] = {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>EntityTooSmall</Code><Message></Message>"
        "<BucketName>snap</BucketName><RequestId>tx00000a1b2c3d4e5f60718-0065f1c2d3-1014-default</RequestId>"
        "<HostId>1014-default-default</HostId></Error>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>EntityTooSmall</Code><Message/>"
        "<BucketName>snap</BucketName><RequestId>tx00000a1b2c3d4e5f60718-0065f1c2d3-1014-default</RequestId>"
        "<HostId>1014-default-default</HostId></Error>",
    };
    for (size_t i = 0; i < 2; i++) {
        struct xml_doc *d;
        CHECK_EQ(parse_str(bodies[i], &d), 0);
        const struct xml_node *r = xml_root(d);
        CHECK_STR(xml_get_text(r, "Code"), "EntityTooSmall");
        size_t n = 99;
        CHECK_STR(xml_text(xml_get(r, "Message"), &n), "");
        CHECK_EQ(n, 0);
        CHECK_STR(xml_get_text(r, "BucketName"), "snap");
        CHECK_STR(xml_get_text(r, "RequestId"), "tx00000a1b2c3d4e5f60718-0065f1c2d3-1014-default");
        char msg[16] = "x";
        CHECK_EQ(xml_copy_text(r, "Message", msg, sizeof msg), 0);
        CHECK_STR(msg, "");
        xml_free(d);
    }
}

TEST(xml_gcs_error)
{
    static const char body[] =
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchUpload</Code>"
        "<Message>The requested upload was not found.</Message>"
        "<Details>No such upload: ABPnzm5p1t2UoSpZ0Gvh4o2Wr2b1Q7Qx</Details></Error>";
    struct xml_doc *d;
    CHECK_EQ(parse_str(body, &d), 0);
    const struct xml_node *r = xml_root(d);
    CHECK_STR(xml_get_text(r, "Code"), "NoSuchUpload");
    CHECK_STR(xml_get_text(r, "Message"), "The requested upload was not found.");
    CHECK_STR(xml_get_text(r, "Details"), "No such upload: ABPnzm5p1t2UoSpZ0Gvh4o2Wr2b1Q7Qx");
    CHECK(xml_get_text(r, "RequestId") == NULL);
    xml_free(d);
}

TEST(xml_list_multipart_uploads)
{
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
        "  <Bucket>snap</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>\n"
        "  <NextKeyMarker>b2/memfile</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>\n"
        "  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>\n"
        "  <Upload><Key>b1/rootfs</Key><UploadId>id-1</UploadId>\n"
        "    <Initiator><ID>arn:aws:iam::111122223333:user/ci</ID><DisplayName>ci</DisplayName></Initiator>\n"
        "    <StorageClass>STANDARD</StorageClass><Initiated>2024-03-01T10:00:00.000Z</Initiated></Upload>\n"
        "  <!-- a comment between uploads -->\n"
        "  <Upload><Key>b2/memfile</Key><UploadId>id-2</UploadId>"
        "<Initiated>2024-03-01T10:00:01.000Z</Initiated></Upload>\n"
        "</ListMultipartUploadsResult>\n";
    struct xml_doc *d;
    CHECK_EQ(parse_str(body, &d), 0);
    const struct xml_node *r = xml_root(d);
    CHECK_STR(xml_get_text(r, "IsTruncated"), "true");
    CHECK_STR(xml_get_text(r, "KeyMarker"), "");
    CHECK_STR(xml_get_text(r, "Upload/Initiator/DisplayName"), "ci");
    static const char *const keys[] = {"b1/rootfs", "b2/memfile"}, *const ids[] = {"id-1", "id-2"};
    size_t i = 0;
    for (const struct xml_node *u = xml_first(r, "Upload"); u; u = xml_next(u, "Upload"), i++) {
        CHECK(i < 2);
        CHECK_STR(xml_get_text(u, "Key"), keys[i]);
        CHECK_STR(xml_get_text(u, "UploadId"), ids[i]);
    }
    CHECK_EQ(i, 2);
    /* Iterating over any child visits every element in order. */
    const char *names[16];
    size_t k = 0;
    for (const struct xml_node *c = xml_first(r, NULL); c && k < 16; c = xml_next(c, NULL))
        names[k++] = xml_name(c);
    CHECK_EQ(k, 9);
    CHECK_STR(names[0], "Bucket");
    CHECK_STR(names[6], "IsTruncated");
    CHECK_STR(names[8], "Upload");
    CHECK(xml_first(xml_get(r, "Bucket"), NULL) == NULL);
    xml_free(d);
}

TEST(xml_list_bucket_result)
{
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>snap</Name>"
        "<Prefix>b1/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
        "<Contents><Key>b1/memfile</Key><LastModified>2024-03-01T10:00:00.000Z</LastModified>"
        "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>4194304</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>b1/snapfile</Key><ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag><Size>0</Size>"
        "</Contents></ListBucketResult>";
    struct xml_doc *d;
    CHECK_EQ(parse_str(body, &d), 0);
    const struct xml_node *r = xml_root(d);
    const struct xml_node *c = xml_first(r, "Contents");
    CHECK_STR(xml_get_text(c, "Key"), "b1/memfile");
    CHECK_STR(xml_get_text(c, "ETag"), "\"9b2cf535f27731c974343645a3985328\"");
    CHECK_STR(xml_get_text(c, "Size"), "4194304");
    c = xml_next(c, "Contents");
    CHECK_STR(xml_get_text(c, "Key"), "b1/snapfile");
    CHECK_STR(xml_get_text(c, "ETag"), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    CHECK(xml_next(c, "Contents") == NULL);
    xml_free(d);
}

TEST(xml_entities_cdata_comments_prefixes)
{
    static const char body[] =
        "\xEF\xBB\xBF<!-- before --><?pi data?>\n"
        "<s3:Doc xmlns:s3='urn:x' a = \"1\" b='&gt;'>"
        "<s3:A>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#xe9;&#x20AC;&#x1F600;</s3:A>"
        "<B><![CDATA[<raw> & ]] stays]]></B>"
        "<C>x<!-- hidden -->y<?ignored?>z</C>"
        "<D>one<E>inner</E>two</D>"
        "<F>a\rb\r\nc\td</F>"
        "<G\n/>"
        "<H></H >"
        "</s3:Doc >\n<!-- after -->\n";
    struct xml_doc *d;
    CHECK_EQ(parse_str(body, &d), 0);
    const struct xml_node *r = xml_root(d);
    CHECK_STR(xml_name(r), "Doc");
    CHECK_STR(xml_get_text(r, "A"), "<>&\"'AB\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
    CHECK_STR(xml_get_text(r, "B"), "<raw> & ]] stays");
    CHECK_STR(xml_get_text(r, "C"), "xyz");
    CHECK_STR(xml_get_text(r, "D"), "onetwo");
    CHECK_STR(xml_get_text(r, "D/E"), "inner");
    CHECK_STR(xml_get_text(r, "F"), "a\nb\nc\td");
    CHECK_STR(xml_get_text(r, "G"), "");
    CHECK_STR(xml_get_text(r, "H"), "");
    CHECK(xml_get(r, "D/") == NULL);
    CHECK(xml_get(r, "/D") == NULL);
    CHECK(xml_get(r, "D//E") == NULL);
    CHECK(xml_get(r, "D/E/F") == NULL);
    xml_free(d);

    /* Depth exactly at the cap is fine. */
    char deep[XML_MAX_DEPTH * 8 + 8];
    size_t n = 0;
    for (int i = 0; i < XML_MAX_DEPTH; i++)
        n += (size_t)sprintf(deep + n, "<a>");
    for (int i = 0; i < XML_MAX_DEPTH; i++)
        n += (size_t)sprintf(deep + n, "</a>");
    CHECK_EQ(xml_parse(deep, n, &d), 0);
    xml_free(d);
}

TEST(xml_errors)
{
    CHECK_BAD("", "no root element");
    CHECK_BAD("   \n\t ", "no root element");
    CHECK_BAD("hello", "expected the root element");
    CHECK_BAD("<1a/>", "expected the root element");
    CHECK_BAD("<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>", "DOCTYPE");
    CHECK_BAD("<!-- open", "unterminated comment");
    CHECK_BAD("<?xml version='1.0'", "unterminated processing instruction");
    CHECK_BAD("<a><![CDATA[x</a>", "unterminated CDATA");
    CHECK_BAD("<a>", "document ends inside <a>");
    CHECK_BAD("<a><b>text", "document ends inside <b>");
    CHECK_BAD("<a></b>", "end tag </b> does not close <a>");
    CHECK_BAD("<s3:a></a>", "end tag </a> does not close <s3:a>");
    CHECK_BAD("<a></a", "expected '>' to end </a>");
    CHECK_BAD("<a></a x>", "expected '>' to end </a>");
    CHECK_BAD("<a b=\"1\"c=\"2\"/>", "bad attribute in <a>");
    CHECK_BAD("<a b/>", "attribute without '='");
    CHECK_BAD("<a b=1/>", "attribute value not quoted");
    CHECK_BAD("<a b=\"1/>", "unterminated attribute value");
    CHECK_BAD("<a b=\"<\"/>", "'<' in an attribute value");
    CHECK_BAD("<a b=\"1\"", "unterminated start tag <a>");
    CHECK_BAD("<a/ >", "expected '>' after '/'");
    CHECK_BAD("<a:/>", "bad element name 'a:'");
    CHECK_BAD("<x:1/>", "bad element name");
    CHECK_BAD("<a><1/></a>", "expected an element name after '<'");
    CHECK_BAD("<a>\x01</a>", "control character 0x01");
    CHECK_BAD("<a><![CDATA[\x1f]]></a>", "control character 0x1f");
    CHECK_BAD("<a>&foo;</a>", "unknown entity &foo;");
    CHECK_BAD("<a>AT&T</a>", "'&' does not start an entity reference");
    CHECK_BAD("<a>&amp</a>", "'&' does not start an entity reference");
    CHECK_BAD("<a>&#;</a>", "unknown entity &#;");
    CHECK_BAD("<a>&#x;</a>", "empty character reference");
    CHECK_BAD("<a>&#xZZ;</a>", "bad digit in character reference &#xZZ;");
    CHECK_BAD("<a>&#12a;</a>", "bad digit");
    CHECK_BAD("<a>&#0;</a>", "&#0; is not an XML character");
    CHECK_BAD("<a>&#x1;</a>", "is not an XML character");
    CHECK_BAD("<a>&#xD800;</a>", "is not an XML character");
    CHECK_BAD("<a>&#xFFFE;</a>", "is not an XML character");
    CHECK_BAD("<a>&#x110000;</a>", "beyond U+10FFFF");
    CHECK_BAD("<a>&#99999999999;</a>", "beyond U+10FFFF");
    CHECK_BAD("<a/><b/>", "content after the root element");
    CHECK_BAD("<a/>text", "content after the root element");
    CHECK_BAD("<a><!ELEMENT x></a>", "unexpected '<!'");
    /* The message points at the line. */
    CHECK_BAD("<a>\n<b>\n</c></a>", "XML line 3");
    /* A NUL inside text is refused (texts never hold one). */
    CHECK(parse_fails("<a>x\0y</a>", 10, SNAP_EFORMAT, "control character 0x00"));

    /* Too deep. */
    char deep[(XML_MAX_DEPTH + 1) * 3 + 1];
    for (int i = 0; i <= XML_MAX_DEPTH; i++)
        memcpy(deep + 3 * i, "<a>", 3);
    deep[sizeof deep - 1] = '\0';
    CHECK_BAD(deep, "nested deeper than 32");

    /* Over the input cap, before anything is read. */
    char *big = malloc(XML_MAX_INPUT + 1);
    CHECK(big);
    memset(big, ' ', XML_MAX_INPUT + 1);
    int ok = parse_fails(big, XML_MAX_INPUT + 1, SNAP_ETOOBIG, "limit");
    /* Exactly at the cap is read (and here is all whitespace). */
    ok = ok && parse_fails(big, XML_MAX_INPUT, SNAP_EFORMAT, "no root element");
    free(big);
    CHECK(ok);
}

TEST(xml_big_document_at_the_cap)
{
    /* A list of many uploads near 1 MiB: every element found, in order. */
    size_t cap = XML_MAX_INPUT, n = 0, count = 0;
    char *buf = malloc(cap);
    CHECK(buf);
    n += (size_t)snprintf(buf, cap, "<ListMultipartUploadsResult>");
    while (n + 200 < cap) {
        n += (size_t)snprintf(buf + n, cap - n, "<Upload><Key>k%zu</Key><UploadId>u%zu</UploadId></Upload>", count,
                              count);
        count++;
    }
    n += (size_t)snprintf(buf + n, cap - n, "</ListMultipartUploadsResult>");
    struct xml_doc *d;
    int err = xml_parse(buf, n, &d);
    free(buf);
    CHECK_EQ(err, 0);
    size_t i = 0;
    char want[32];
    for (const struct xml_node *u = xml_first(xml_root(d), "Upload"); u; u = xml_next(u, "Upload"), i++) {
        snprintf(want, sizeof want, "u%zu", i);
        if (strcmp(xml_get_text(u, "UploadId"), want) != 0)
            break;
    }
    xml_free(d);
    CHECK_EQ(i, count);
}

TEST(xml_alloc_failure_every_point)
{
    char body[4096];
    size_t n = (size_t)snprintf(body, sizeof body, "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "<Upload><Key>k%d</Key><UploadId>id%d</UploadId></Upload>", i,
                              i);
    n += (size_t)snprintf(body + n, sizeof body - n, "</ListMultipartUploadsResult>");
    CHECK(n < sizeof body);
    int succeeded = 0;
    for (long k = 0; k < 100 && !succeeded; k++) {
        struct xml_doc *d;
        snap_mem_fail_after(k);
        int err = xml_parse(body, n, &d);
        snap_mem_fail_after(-1);
        if (err) {
            CHECK_EQ(err, SNAP_ENOMEM);
            CHECK(d == NULL);
            continue;
        }
        succeeded = 1;
        CHECK(k >= 4); /* doc, arena, stack and at least one growth of the node array */
        const struct xml_node *u = xml_first(xml_root(d), "Upload");
        for (int i = 0; i < 39; i++)
            u = xml_next(u, "Upload");
        CHECK_STR(xml_get_text(u, "UploadId"), "id39");
        CHECK_STR(xml_get_text(xml_root(d), "IsTruncated"), "false");
        xml_free(d);
    }
    CHECK(succeeded);
}
