/* libFuzzer target for core/bencode: any input must decode or fail cleanly; a decoded value must re-encode
 * canonically, decode again as canonical, and re-encode to the same bytes; the token array must be well formed;
 * the prefix decoder, the token limit and the lookups must agree with the full decoder. abort() on any mismatch. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                                       \
    do {                                                                                                               \
        if (!(c))                                                                                                      \
            abort();                                                                                                   \
    } while (0)

static void check_error(const ben_error *err, size_t size)
{
    CHECK(err->offset <= size);
    CHECK(memchr(err->what, 0, sizeof err->what) != NULL);
    CHECK(err->what[0] != 0);
}

/* Structural invariants of a decoded document, for the value spanning [0, len). */
static void check_layout(const ben_doc *doc, size_t len)
{
    CHECK(doc->ntok >= 1);
    CHECK(doc->tok[0].start == 0 && doc->tok[0].end == len && doc->tok[0].next == doc->ntok);
    for (uint32_t i = 0; i < doc->ntok; i++) {
        const ben_token *t = &doc->tok[i];
        CHECK(t->next > i && t->next <= doc->ntok);
        CHECK(t->start < t->end && t->end <= len);
        switch (t->type) {
        case BEN_INT:
        case BEN_STR:
            CHECK(t->next == i + 1 && t->count == 0);
            if (t->type == BEN_STR)
                CHECK(t->v.s.ptr + t->v.s.len == doc->input + t->end);
            break;
        case BEN_LIST:
        case BEN_DICT: {
            /* walking the children by skip pointers lands exactly on `next`, and each child lies inside */
            uint32_t c = i + 1, n = 0;
            while (c < t->next) {
                CHECK(doc->tok[c].start > t->start && doc->tok[c].end < t->end);
                if (t->type == BEN_DICT && n % 2 == 0)
                    CHECK(doc->tok[c].type == BEN_STR);
                c = doc->tok[c].next;
                n++;
            }
            CHECK(c == t->next);
            CHECK(n == (t->type == BEN_DICT ? 2 * (uint64_t)t->count : t->count));
            break;
        }
        default:
            abort();
        }
    }
}

/* Lookups agree with a walk over the children. */
static void check_lookups(const ben_doc *doc)
{
    for (uint32_t i = 0; i < doc->ntok; i++) {
        const ben_token *t = &doc->tok[i];
        if (t->type == BEN_LIST) {
            uint32_t n = 0;
            for (int64_t c = ben_first_child(doc, i); c >= 0; c = ben_next_sibling(doc, i, (uint32_t)c)) {
                CHECK(ben_list_at(doc, i, n) == c);
                n++;
            }
            CHECK(n == t->count);
            CHECK(ben_list_at(doc, i, n) == -1);
        } else if (t->type == BEN_DICT) {
            uint32_t n = 0;
            for (int64_t k = ben_first_child(doc, i); k >= 0; k = ben_next_sibling(doc, i, (uint32_t)k)) {
                const uint8_t *p;
                size_t l;
                CHECK(ben_get_str(doc, k, &p, &l));
                CHECK(ben_dict_find_n(doc, i, p, l) == k + 1); /* keys are unique: the first match is this one */
                int64_t v = ben_next_sibling(doc, i, (uint32_t)k);
                CHECK(v == k + 1);
                k = v;
                n++;
            }
            CHECK(n == t->count);
        } else {
            CHECK(ben_first_child(doc, i) == -1);
            CHECK(ben_dict_find(doc, i, "") == -1);
            int64_t iv;
            CHECK(ben_get_int(doc, i, &iv) == (t->type == BEN_INT));
        }
    }
}

static void reencode(const ben_doc *doc, ben_buf *out)
{
    ben_buf_init(out);
    ben_put_value(out, doc, 0);
    CHECK(!out->failed);
}

/* The prefix decoder agrees with the full one (whose result is rc, err): it accepts everything the full decoder does
 * (consuming all of it), and what it accepts is exactly a full decode of the consumed bytes. */
static void check_prefix(const uint8_t *data, size_t size, int rc, const ben_error *err)
{
    ben_doc pdoc;
    ben_error perr;
    size_t consumed = 0;
    int prc = ben_decode_prefix(data, size, 0, &pdoc, &consumed, &perr);
    if (rc == 0)
        CHECK(prc == 0 && consumed == size);
    if (prc == 0) {
        CHECK(consumed >= 2 && consumed <= size);
        ben_doc sub;
        ben_error serr;
        CHECK(ben_decode(data, consumed, 0, &sub, &serr) == 0);
        CHECK(sub.ntok == pdoc.ntok && sub.canonical == pdoc.canonical);
        ben_doc_free(&sub);
        ben_doc_free(&pdoc);
        if (rc != 0) {
            CHECK(err->offset == consumed && strstr(err->what, "trailing") != NULL);
        }
    } else {
        check_error(&perr, size);
        CHECK(pdoc.tok == NULL && pdoc.ntok == 0);
        CHECK(rc != 0 && err->offset == perr.offset && strcmp(err->what, perr.what) == 0);
    }
}

/* The token limit: exactly ntok fits, one fewer fails. */
static void check_token_limit(const uint8_t *data, size_t size, uint32_t ntok)
{
    ben_doc lim;
    ben_error lerr;
    CHECK(ben_decode(data, size, ntok, &lim, &lerr) == 0);
    ben_doc_free(&lim);
    if (ntok > 1) {
        CHECK(ben_decode(data, size, ntok - 1, &lim, &lerr) != 0);
        CHECK(strstr(lerr.what, "tokens") != NULL);
    }
}

/* Canonical re-encoding of the document decoded from data: identical to the input iff the input was canonical, the
 * same bytes by the rebuilding path as by the verbatim one, decoding as canonical with the same shape, re-encoding
 * identically. */
static void check_reencoding(const ben_doc *doc, const uint8_t *data, size_t size)
{
    ben_buf once;
    reencode(doc, &once);
    CHECK((once.len == size && memcmp(once.data, data, size) == 0) == doc->canonical);

    ben_doc slow = *doc;
    slow.canonical = false;
    ben_buf rebuilt;
    reencode(&slow, &rebuilt);
    CHECK(rebuilt.len == once.len && memcmp(rebuilt.data, once.data, once.len) == 0);
    ben_buf_free(&rebuilt);

    ben_doc again;
    ben_error aerr;
    CHECK(ben_decode(once.data, once.len, 0, &again, &aerr) == 0);
    CHECK(again.canonical);
    CHECK(again.ntok == doc->ntok);
    check_layout(&again, once.len);
    ben_buf twice;
    reencode(&again, &twice);
    CHECK(twice.len == once.len && memcmp(twice.data, once.data, once.len) == 0);
    ben_buf_free(&twice);

    ben_doc_free(&again);
    ben_buf_free(&once);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ben_doc doc;
    ben_error err;
    int rc = ben_decode(data, size, 0, &doc, &err);
    check_prefix(data, size, rc, &err);
    if (rc != 0) {
        check_error(&err, size);
        CHECK(doc.tok == NULL && doc.ntok == 0);
        return 0;
    }
    check_layout(&doc, size);
    check_lookups(&doc);
    check_token_limit(data, size, doc.ntok);
    check_reencoding(&doc, data, size);
    ben_doc_free(&doc);
    return 0;
}
