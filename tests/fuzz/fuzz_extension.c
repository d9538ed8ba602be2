/* Fuzz target for core/extension: the input (after a first byte choosing the known metadata size) is decoded both as
 * an extension handshake and as a ut_metadata message. Whatever decodes must re-encode canonically and decode back to
 * the same thing; errors must point inside the input. A handshake fails only when it is not bencode or not a
 * dictionary (malformed fields are ignored, and counted).
 *
 * Input layout: byte 0: known metadata size (0 = unknown, else byte * 1000 - 1); the rest is the payload. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"
#include "extension.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const ext_error *err, size_t len)
{
    if (err->offset > len || err->what[0] == '\0' || memchr(err->what, 0, sizeof err->what) == NULL)
        abort();
}

/* The handshake is refused only when the payload is not bencode (within the token bound) or not a dictionary. */
static bool handshake_fatal(const uint8_t *p, size_t n)
{
    ben_doc doc;
    ben_error be;
    if (ben_decode(p, n, EXT_HANDSHAKE_MAX_TOKENS, &doc, &be) < 0)
        return true;
    bool fatal = doc.tok[0].type != BEN_DICT;
    ben_doc_free(&doc);
    return fatal;
}

static void fuzz_handshake(const uint8_t *p, size_t n)
{
    ext_handshake h, back;
    ext_error err = {0};
    bool fatal = handshake_fatal(p, n);
    if (ext_handshake_decode(p, n, &h, &err) < 0) {
        if (!fatal)
            abort(); /* a malformed field must be ignored, not fail the handshake */
        check_error(&err, n);
        return;
    }
    if (fatal)
        abort();
    /* ignored fields: counted, the first described (inside the input); none: no description */
    if (h.ignored)
        check_error(&err, n);
    else if (err.what[0] != '\0')
        abort();
    if (h.v_len > EXT_CLIENT_MAX || h.v[h.v_len] != '\0' || strlen(h.v) != h.v_len)
        abort();
    if (h.yourip_len != 0 && h.yourip_len != 4 && h.yourip_len != 16)
        abort();
    if (h.metadata_size > EXT_METADATA_SIZE_MAX || h.reqq > INT32_MAX)
        abort();
    for (int i = 0; i < EXT_NAME_COUNT; i++)
        for (int j = i + 1; j < EXT_NAME_COUNT; j++)
            if (h.m[i] && h.m[i] == h.m[j])
                abort();
    uint8_t buf[EXT_HANDSHAKE_MAX];
    size_t len = ext_handshake_encode(&h, buf, sizeof buf);
    if (len == 0)
        abort();
    /* canonical bencoding */
    ben_doc doc;
    ben_error be;
    if (ben_decode(buf, len, 0, &doc, &be) < 0 || !doc.canonical)
        abort();
    ben_doc_free(&doc);
    /* decodes back to the same struct, nothing ignored (m_unknown and ignored aside: neither is re-encoded) */
    if (ext_handshake_decode(buf, len, &back, &err) < 0 || back.ignored != 0)
        abort();
    back.m_unknown = h.m_unknown;
    back.ignored = h.ignored;
    if (memcmp(&h, &back, sizeof h) != 0)
        abort();
    /* and encodes to the same bytes */
    uint8_t again[EXT_HANDSHAKE_MAX];
    if (ext_handshake_encode(&back, again, sizeof again) != len || memcmp(buf, again, len) != 0)
        abort();
}

static void fuzz_ut_metadata(const uint8_t *p, size_t n, uint32_t known)
{
    ext_ut_metadata_msg m, back;
    ext_error err = {0};
    ext_status st = ext_ut_metadata_decode(p, n, known, &m, &err);
    if (st == EXT_ERROR) {
        check_error(&err, n);
        return;
    }
    if (st == EXT_IGNORE)
        return;
    if (st != EXT_OK)
        abort();
    static uint8_t buf[EXT_UT_METADATA_MSG_MAX + EXT_UT_METADATA_PIECE_LEN];
    size_t len;
    switch (m.type) {
    case EXT_UT_METADATA_REQUEST:
        /* a request beyond any metadata decodes (a server rejects it, echoing the index); we never send one */
        if (m.piece >= ext_ut_metadata_piece_count(EXT_METADATA_SIZE_MAX)) {
            if (ext_ut_metadata_encode_request(buf, EXT_UT_METADATA_MSG_MAX, m.piece) != 0 ||
                ext_ut_metadata_encode_reject(buf, EXT_UT_METADATA_MSG_MAX, m.piece) == 0)
                abort();
            return;
        }
        len = ext_ut_metadata_encode_request(buf, EXT_UT_METADATA_MSG_MAX, m.piece);
        break;
    case EXT_UT_METADATA_REJECT:
        len = ext_ut_metadata_encode_reject(buf, EXT_UT_METADATA_MSG_MAX, m.piece);
        break;
    case EXT_UT_METADATA_DATA:
        if (m.data < p || m.data + m.data_len != p + n || m.data_len != ext_ut_metadata_piece_len(m.total_size, m.piece))
            abort();
        if (known && m.total_size != known)
            abort();
        len = ext_ut_metadata_encode_data_header(buf, EXT_UT_METADATA_MSG_MAX, m.piece, m.total_size);
        if (len == 0)
            abort();
        memcpy(buf + len, m.data, m.data_len);
        len += m.data_len;
        break;
    default:
        abort();
    }
    if (len == 0)
        abort();
    if (ext_ut_metadata_decode(buf, len, known, &back, &err) != EXT_OK)
        abort();
    if (back.type != m.type || back.piece != m.piece || back.total_size != m.total_size ||
        back.data_len != m.data_len || (m.data_len && memcmp(back.data, m.data, m.data_len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t known = data[0] ? (uint32_t)data[0] * 1000u - 1u : 0;
    fuzz_handshake(data + 1, size - 1);
    fuzz_ut_metadata(data + 1, size - 1, known);
    return 0;
}
