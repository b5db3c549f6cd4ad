"""The compiled text path of :mod:`cymlp.vocab`: whitespace tokens, counts, n-grams
and ids on UTF-8 bytes, without the GIL.

:class:`cymlp.vocab.Vocabulary` owns the rules (which ids, in which order, what is
an error); this module carries them out fast. The only Python work per text is the
preparation ``Vocabulary._prepare`` defines: an ASCII ``str`` is used as it is (or
lower-cased), any other text goes through that method once (NFC, lower-casing,
refusing lone surrogates; a token list comes back as a list) and is encoded to
UTF-8. Everything per token -- splitting at whitespace as ``str.split()`` does,
hashing, counting, word and character n-grams, look-up, CSR assembly -- runs on the
bytes in ``nogil`` code.

Texts are taken in chunks (at most ``CHUNK_TEXTS`` texts or about ``CHUNK_BYTES``
bytes): prepare a chunk with the GIL, process it without. So the memory held for
the input is one chunk, and several threads can work on different ranges of texts
at once (one thread's preparation overlaps the others' processing). Growable
buffers (``Vec``) take any length: a long token is never cut. Memory comes from
``PyMem_RawMalloc`` and friends (``malloc`` underneath, callable without the GIL), so
``tracemalloc`` counts it like the memory of Python objects.

Hash tables: open addressing with linear probing over a power-of-two array of slots,
at most 3/4 full. A slot holds the whole entry (32 bits of hash, key length, value)
and the key itself up to 16 bytes (most words and many bigrams), longer keys live one
after another in an arena; slots are 32 bytes, two to a cache line: a look-up usually
touches one line. The value is a count while fitting and an id in the look-up index.
Ranking radix-sorts compact records (count, first 16 key bytes, slot) and reads a key
only to break a tie of all three.

Hashed n-grams (``n_buckets``): the bucket of an n-gram is the 32-bit FNV-1a hash of
its UTF-8 bytes modulo ``n_buckets`` (``_fnv1a_32`` below; ``cymlp.vocab`` has the
same function in Python). The tables use a faster word-at-a-time hash instead
(``hash64``), which never leaves a process.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree, PyMem_RawMalloc, PyMem_RawRealloc
from cpython.unicode cimport (PyUnicode_AsUTF8String, PyUnicode_CheckExact,
                              PyUnicode_DATA, PyUnicode_DecodeUTF8, PyUnicode_GET_LENGTH)
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy

import numpy as np

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define CYMLP_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define CYMLP_PREFETCH(p) ((void)0)
    #endif
    #include <string.h>
    #include <stdint.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    /* Token spans of an ASCII text s[0:n], split at whitespace as str.split() splits
       (ASCII whitespace is 9-13 and 28-32), 16 bytes at a time: a bit mask of the
       whitespace bytes of each block, then one step per token start or end. ``out``
       has room for n + 2 entries (a token takes at least one byte and one more for
       the whitespace after it, but the last one). Returns the number of tokens. */
    static int64_t cymlp_split_ascii(const unsigned char* s, int64_t n, int64_t* out) {
        const __m128i nine = _mm_set1_epi8(9), twenty8 = _mm_set1_epi8(28),
                      four = _mm_set1_epi8(4);
        unsigned char tail[16];
        int64_t i, count = 0, start = 0;
        uint32_t prev = 1;              /* whitespace before the text */
        for (i = 0; i < n; i += 16) {
            __m128i v, a, b;
            uint32_t ws, before, starts, ends, events;
            if (n - i >= 16) {
                v = _mm_loadu_si128((const __m128i*)(s + i));
            } else {
                memset(tail, 32, 16);
                memcpy(tail, s + i, (size_t)(n - i));
                v = _mm_loadu_si128((const __m128i*)tail);
            }
            a = _mm_sub_epi8(v, nine);
            b = _mm_sub_epi8(v, twenty8);
            a = _mm_cmpeq_epi8(_mm_min_epu8(a, four), a);
            b = _mm_cmpeq_epi8(_mm_min_epu8(b, four), b);
            ws = (uint32_t)_mm_movemask_epi8(_mm_or_si128(a, b));
            before = ((ws << 1) | prev) & 0xFFFFu;   /* whitespace at j - 1 */
            starts = ~ws & before & 0xFFFFu;
            ends = ws & ~before & 0xFFFFu;
            prev = ws >> 15;
            events = starts | ends;
            while (events) {
                int j = __builtin_ctz(events);
                events &= events - 1;
                if (starts & (1u << j)) {
                    start = i + j;
                } else {
                    out[2 * count] = start;
                    out[2 * count + 1] = i + j;
                    count++;
                }
            }
        }
        if (!prev) {                    /* the last token runs to the end */
            out[2 * count] = start;
            out[2 * count + 1] = n;
            count++;
        }
        return count;
    }
    #define CYMLP_HAVE_SPLIT_ASCII 1
    #else
    static int64_t cymlp_split_ascii(const unsigned char* s, int64_t n, int64_t* out) {
        (void)s; (void)n; (void)out;
        return -1;
    }
    #define CYMLP_HAVE_SPLIT_ASCII 0
    #endif
    static inline uint64_t cymlp_load_be64(const unsigned char* p) {
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) \
        && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t v;
        memcpy(&v, p, 8);
        return __builtin_bswap64(v);
    #else
        uint64_t v = 0;
        int j;
        for (j = 0; j < 8; j++)
            v = (v << 8) | p[j];
        return v;
    #endif
    }
    """
    # a hint to load the cache line of p: the slot a key will probe. The tables are
    # larger than the caches, and a text's keys are independent, so asking for all
    # their slots before using any overlaps the waits for memory.
    void prefetch "CYMLP_PREFETCH" (const void* p) noexcept nogil
    # the token spans of an ASCII text, 16 bytes a step (see split_ascii_ok)
    int64_t split_ascii "cymlp_split_ascii" (const uint8_t* s, int64_t n, int64_t* out) noexcept nogil
    bint HAVE_SPLIT_ASCII "CYMLP_HAVE_SPLIT_ASCII"
    # bytes p[0:8] as a big-endian integer (one load where the CPU allows)
    uint64_t load_be64 "cymlp_load_be64" (const uint8_t* p) noexcept nogil

cdef extern from "Python.h":
    # str.split() splits at the characters for which this is true; a pure function
    # of the code point (a table for ASCII, a switch beyond), safe without the GIL
    bint py_isspace "Py_UNICODE_ISSPACE" (Py_UCS4 ch) nogil


cdef enum:
    CHUNK_TEXTS = 1024          # texts prepared with the GIL before a nogil pass
    CHUNK_BYTES = 1 << 20       # ... or about this many bytes of text
    PAD_ID = 0
    UNK_ID = 1
    GROUP_WORDS = 0
    GROUP_GRAMS = 1
    GROUP_CHARS = 2
    INLINE_KEY = 16             # keys up to this many bytes are kept in their slot
    SPLIT_ASCII_MAX = 1 << 16   # longer ASCII texts are split byte by byte (split_ascii
                                # needs room for a span per byte)
    ITEM_BITS = 11              # bits of a digit of the radix sort of items
    ITEM_BUCKETS = 1 << 11
    ITEM_PREFIX_PASSES = 6      # digits in the 64-bit prefix
    ITEM_COUNT_PASSES = 3       # digits in the 32-bit count


# ---------------------------------------------------------------- growable arrays
cdef struct Vec:
    char* data
    int64_t n           # elements in use
    int64_t cap         # elements allocated
    int64_t item        # bytes per element


cdef inline void vec_init(Vec* v, int64_t item) noexcept nogil:
    v.data = NULL
    v.n = 0
    v.cap = 0
    v.item = item


cdef inline void vec_free(Vec* v) noexcept nogil:
    PyMem_RawFree(v.data)
    v.data = NULL
    v.n = 0
    v.cap = 0


cdef int vec_reserve(Vec* v, int64_t need) noexcept nogil:
    """Room for ``need`` elements in all; 0, or -1 if out of memory (or ``need``
    would overflow the byte count)."""
    cdef int64_t cap = v.cap
    cdef char* p
    if need <= cap:
        return 0
    if need > INT64_MAX // (2 * v.item):
        return -1
    if cap < 16:
        cap = 16
    while cap < need:
        cap *= 2
    p = <char*>PyMem_RawRealloc(v.data, <size_t>(cap * v.item))
    if p == NULL:
        return -1
    v.data = p
    v.cap = cap
    return 0


cdef inline int push_i32(Vec* v, int32_t x) noexcept nogil:
    if v.n == v.cap and vec_reserve(v, v.n + 1) < 0:
        return -1
    (<int32_t*>v.data)[v.n] = x
    v.n += 1
    return 0


cdef inline int push_i64(Vec* v, int64_t x) noexcept nogil:
    if v.n == v.cap and vec_reserve(v, v.n + 1) < 0:
        return -1
    (<int64_t*>v.data)[v.n] = x
    v.n += 1
    return 0


cdef inline int push_f64_n(Vec* v, double x, int64_t count) noexcept nogil:
    """Append ``count`` copies of ``x``."""
    cdef int64_t j
    cdef double* p
    if vec_reserve(v, v.n + count) < 0:
        return -1
    p = <double*>v.data
    for j in range(v.n, v.n + count):
        p[j] = x
    v.n += count
    return 0


cdef inline int push_bytes(Vec* v, const char* s, int64_t n) noexcept nogil:
    """Append ``n`` bytes to a Vec of bytes."""
    if vec_reserve(v, v.n + n) < 0:
        return -1
    if n > 0:
        memcpy(v.data + v.n, s, <size_t>n)
    v.n += n
    return 0


cdef inline int push_i32s(Vec* v, const int32_t* src, int64_t m) noexcept nogil:
    """Append ``m`` int32 to a Vec of int32."""
    if vec_reserve(v, v.n + m) < 0:
        return -1
    if m > 0:
        memcpy(<int32_t*>v.data + v.n, src, <size_t>m * sizeof(int32_t))
    v.n += m
    return 0


cdef object vec_array(Vec* v, object dtype):
    """A NumPy copy of the first ``v.n`` elements."""
    out = np.empty(v.n, dtype=dtype)
    cdef uint8_t[::1] raw = out.view(np.uint8)
    if v.n > 0:
        memcpy(&raw[0], v.data, <size_t>(v.n * v.item))
    return out


# ---------------------------------------------------------------------- hashing
cdef inline uint32_t fnv1a_32(const char* s, int64_t n) noexcept nogil:
    """h = (h ^ byte) * 16777619 mod 2^32 from h = 2166136261  (32-bit FNV-1a)"""
    cdef uint32_t h = 2166136261U
    cdef int64_t i
    for i in range(n):
        h = (h ^ <uint8_t>s[i]) * 16777619U
    return h


# The tables hash a key as mix(poly(key)), poly(s) = sum of s[i] P^(len-1-i) mod 2^64.
# poly composes: poly(a + " " + b) = (poly(a) P + 32) P^len(b) + poly(b), so the hash
# of a word n-gram follows from its tokens' in O(n), without joining them. For the
# tables only: never stored, never compared across processes (the bucket hash is
# fnv1a_32).
cdef uint64_t POLY = 0x100000001b3ULL           # odd
cdef uint64_t POLY_POW[64]                      # POLY^k for k < 64 (filled at import)
POLY_POW[0] = 1
for _k in range(1, 64):
    POLY_POW[_k] = POLY_POW[_k - 1] * POLY


cdef inline uint64_t poly_pow(int64_t n) noexcept nogil:
    """POLY^n mod 2^64."""
    cdef uint64_t r = 1, b = POLY
    if n < 64:
        return POLY_POW[n]
    while n > 0:
        if n & 1:
            r *= b
        b *= b
        n >>= 1
    return r


cdef inline uint64_t poly(const char* s, int64_t n) noexcept nogil:
    """sum of s[i] POLY^(n-1-i) mod 2^64, four bytes a step."""
    cdef const uint8_t* u = <const uint8_t*>s
    cdef uint64_t h = 0
    cdef uint64_t p2 = POLY_POW[2], p3 = POLY_POW[3], p4 = POLY_POW[4]
    cdef int64_t i = 0
    while i + 4 <= n:
        h = h * p4 + (u[i] * p3 + u[i + 1] * p2 + u[i + 2] * POLY + u[i + 3])
        i += 4
    while i < n:
        h = h * POLY + u[i]
        i += 1
    return h


cdef inline uint64_t mix(uint64_t h) noexcept nogil:
    """A xor-shift-multiply finaliser: every bit of h reaches the low bits (the slot);
    the low 32 bits (what a slot keeps) are never all 0, which marks an empty slot."""
    h ^= h >> 30
    h *= 0xbf58476d1ce4e5b9ULL
    h ^= h >> 27
    h *= 0x94d049bb133111ebULL
    h ^= h >> 31
    return h if (h & 0xFFFFFFFFULL) != 0 else h | 1


cdef inline uint64_t hash64(const char* s, int64_t n) noexcept nogil:
    """The table hash of a key."""
    return mix(poly(s, n))


def _fnv1a_32(bytes data):
    """32-bit FNV-1a of ``data`` (the bucket hash), for the tests."""
    return fnv1a_32(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


# ------------------------------------------------------------------ hash tables
cdef struct Slot:
    uint32_t hash       # the low 32 bits of the key's hash; 0: an empty slot (never
                        # so for a key, see mix)
    uint32_t len        # key length in bytes (a key has fewer than 2^32)
    int64_t value       # a count (fitting) or an id (look-up)
    char key[16]        # the key if len <= INLINE_KEY; else its offset in the arena (int64)


cdef struct Table:
    Slot* slots         # mask + 1 of them, a power of two, at most 3/4 full; the
                        # array starts on a cache line, so a slot (32 bytes) never
                        # straddles two
    void* raw           # the allocation that holds slots
    int64_t mask        # at most 2^32 - 1: a slot's hash bits place it
    int64_t n           # keys held
    Vec arena           # the bytes of the keys longer than INLINE_KEY, one after another


cdef enum:
    CACHE_LINE = 64


cdef Slot* slots_alloc(int64_t n, void** raw) noexcept nogil:
    """``n`` zeroed slots starting on a cache line (``raw``: the block to free);
    NULL if out of memory."""
    cdef size_t addr
    if n > (INT64_MAX - CACHE_LINE) // <int64_t>sizeof(Slot):
        return NULL
    raw[0] = PyMem_RawCalloc(<size_t>(n * <int64_t>sizeof(Slot) + CACHE_LINE), 1)
    if raw[0] == NULL:
        return NULL
    addr = <size_t>raw[0]
    addr = (addr + CACHE_LINE - 1) & ~(<size_t>(CACHE_LINE - 1))
    return <Slot*>addr


cdef int table_init(Table* t) noexcept nogil:
    vec_init(&t.arena, 1)
    t.n = 0
    t.mask = 63
    t.slots = slots_alloc(t.mask + 1, &t.raw)
    return 0 if t.slots != NULL else -1


cdef void table_free(Table* t) noexcept nogil:
    PyMem_RawFree(t.raw)
    t.raw = NULL
    t.slots = NULL
    t.n = 0
    vec_free(&t.arena)


cdef inline const char* slot_key(const Table* t, const Slot* s) noexcept nogil:
    if s.len <= INLINE_KEY:
        return s.key
    return t.arena.data + (<const int64_t*>s.key)[0]


cdef inline bint slot_is(const Table* t, const Slot* s, const char* key, int64_t n,
                         uint64_t h) noexcept nogil:
    """Slot ``s`` holds ``key``."""
    return s.hash == <uint32_t>h and s.len == n and bytes_equal(slot_key(t, s), key, n)


cdef inline void prefetch_slot(const Table* t, uint64_t h) noexcept nogil:
    """Ask for the cache line of the slot where the search for hash ``h`` starts, and
    the next one, where a search often goes on (a prefetch past the array's end is
    harmless: it never faults)."""
    cdef const Slot* s = &t.slots[h & <uint64_t>t.mask]
    prefetch(s)
    prefetch(<const char*>s + CACHE_LINE)


cdef int64_t table_find(const Table* t, const char* key, int64_t n, uint64_t h) noexcept nogil:
    """Slot of ``key`` (``n`` bytes, hash ``h``), or -1 if absent."""
    cdef int64_t i = <int64_t>(h & <uint64_t>t.mask)
    while t.slots[i].hash != 0:
        if slot_is(t, &t.slots[i], key, n, h):
            return i
        i = (i + 1) & t.mask
    return -1


cdef inline int64_t table_get(const Table* t, const char* key, int64_t n, uint64_t h) noexcept nogil:
    """Value of ``key``, -1 if absent (or marked absent: a negative value)."""
    cdef int64_t e = table_find(t, key, n, h)
    return -1 if e < 0 or t.slots[e].value < 0 else t.slots[e].value


cdef inline bint bytes_equal(const char* a, const char* b, int64_t n) noexcept nogil:
    cdef int64_t j
    if n > INLINE_KEY:
        return memcmp(a, b, <size_t>n) == 0
    for j in range(n):      # short: a loop beats a call
        if a[j] != b[j]:
            return False
    return True


cdef inline void copy_bytes(char* dst, const char* src, int64_t n) noexcept nogil:
    """``memcpy``; a short copy (a key) as a loop: cheaper than the call."""
    cdef int64_t j
    if n > INLINE_KEY:
        memcpy(dst, src, <size_t>n)
        return
    for j in range(n):
        dst[j] = src[j]


cdef int64_t table_find_gram(const Table* t, const char* s, const int64_t* sp, int64_t i,
                             int64_t n, int64_t L, uint64_t h, int64_t* empty) noexcept nogil:
    """Slot of the word n-gram of tokens ``i .. i+n-1`` (their spans ``sp`` in ``s``)
    joined by single spaces, ``L`` bytes, hash ``h``; -1 if absent, and then the
    empty slot that ended the search in ``empty`` (if not NULL): where
    :func:`table_put_gram` may place it. Compares token by token: the n-gram is
    never joined."""
    cdef int64_t e = <int64_t>(h & <uint64_t>t.mask), q, pos, len_q
    cdef const Slot* sl
    cdef const char* k
    cdef bint same
    while t.slots[e].hash != 0:
        sl = &t.slots[e]
        if sl.hash == <uint32_t>h and sl.len == L:
            k = slot_key(t, sl)
            pos = 0
            same = True
            for q in range(i, i + n):
                if q > i:
                    if k[pos] != 32:
                        same = False
                        break
                    pos += 1
                len_q = sp[2 * q + 1] - sp[2 * q]
                if not bytes_equal(k + pos, s + sp[2 * q], len_q):
                    same = False
                    break
                pos += len_q
            if same:
                return e
        e = (e + 1) & t.mask
    if empty != NULL:
        empty[0] = e
    return -1


cdef int table_put_gram(Table* t, int64_t e, const char* s, const int64_t* sp, int64_t i,
                        int64_t n, int64_t L, uint64_t h, int64_t value) noexcept nogil:
    """Insert the word n-gram of tokens ``i .. i+n-1`` (see :func:`table_find_gram`,
    which found it absent and ``e`` empty; no insertion since) with ``value``: its
    tokens are copied with a space between them straight into the slot or the
    arena. 0, or -1 if out of memory."""
    cdef Slot* sl
    cdef char* out
    cdef int64_t q, len_q, pos = 0
    if L > <int64_t>0xFFFFFFFF:
        return -1
    if 4 * (t.n + 1) > 3 * (t.mask + 1):  # keep the table at most 3/4 full
        if table_grow(t) < 0:
            return -1
        e = <int64_t>(h & <uint64_t>t.mask)
        while t.slots[e].hash != 0:
            e = (e + 1) & t.mask
    sl = &t.slots[e]
    if L <= INLINE_KEY:
        out = sl.key
    else:
        if vec_reserve(&t.arena, t.arena.n + L) < 0:
            return -1
        (<int64_t*>sl.key)[0] = t.arena.n
        out = t.arena.data + t.arena.n
        t.arena.n += L
    for q in range(i, i + n):
        if q > i:
            out[pos] = 32       # " "
            pos += 1
        len_q = sp[2 * q + 1] - sp[2 * q]
        copy_bytes(out + pos, s + sp[2 * q], len_q)
        pos += len_q
    sl.hash = <uint32_t>h
    sl.len = <uint32_t>L
    sl.value = value
    t.n += 1
    return 0


cdef int table_grow(Table* t) noexcept nogil:
    """Double the slots and place every key again by its stored hash."""
    cdef int64_t mask = 2 * t.mask + 1, e, i
    cdef Slot* slots
    cdef void* raw
    if mask > <int64_t>0xFFFFFFFF:      # the stored 32 hash bits place a key
        return -1
    slots = slots_alloc(mask + 1, &raw)
    if slots == NULL:
        return -1
    for e in range(t.mask + 1):
        if t.slots[e].hash != 0:
            i = <int64_t>(t.slots[e].hash & <uint64_t>mask)
            while slots[i].hash != 0:
                i = (i + 1) & mask
            slots[i] = t.slots[e]
    PyMem_RawFree(t.raw)
    t.raw = raw
    t.slots = slots
    t.mask = mask
    return 0


cdef int64_t table_add(Table* t, const char* key, int64_t n, uint64_t h,
                       int64_t value, bint accumulate) noexcept nogil:
    """Slot of ``key``, inserted with ``value`` if absent; if present, its value is
    increased by ``value`` when ``accumulate`` (counting) and left alone otherwise
    (the first id of a key wins). -1 if out of memory. A slot number holds only
    until the next insertion (the table may grow)."""
    cdef int64_t i = <int64_t>(h & <uint64_t>t.mask)
    cdef Slot* s
    if n > <int64_t>0xFFFFFFFF:
        return -1
    while t.slots[i].hash != 0:
        if slot_is(t, &t.slots[i], key, n, h):
            if accumulate:
                t.slots[i].value += value
            return i
        i = (i + 1) & t.mask
    if 4 * (t.n + 1) > 3 * (t.mask + 1):  # keep the table at most 3/4 full
        if table_grow(t) < 0:
            return -1
        i = <int64_t>(h & <uint64_t>t.mask)
        while t.slots[i].hash != 0:
            i = (i + 1) & t.mask
    s = &t.slots[i]
    if n <= INLINE_KEY:
        copy_bytes(s.key, key, n)
    else:
        (<int64_t*>s.key)[0] = t.arena.n
        if push_bytes(&t.arena, key, n) < 0:
            return -1
    s.hash = <uint32_t>h
    s.len = <uint32_t>n
    s.value = value
    t.n += 1
    return i


cdef inline bint is_reserved(const Table* t, int64_t e) noexcept nogil:
    """The key of slot ``e`` is ``<pad>`` or ``<unk>``."""
    cdef const Slot* s = &t.slots[e]
    return s.len == 5 and (memcmp(s.key, b"<pad>", 5) == 0 or memcmp(s.key, b"<unk>", 5) == 0)


cdef struct Rank:
    int64_t count
    uint64_t prefix0    # the key's first 16 bytes, big-endian, zero-padded
    uint64_t prefix1
    int64_t slot


cdef inline bint ranks_before(const Table* t, const Rank* a, const Rank* b) noexcept nogil:
    """``a`` comes before ``b``: higher count first, then the smaller key. Bytewise
    order of UTF-8 is code point order, so this is Python's order of the strings (a
    key before every longer key it begins). The prefixes settle most ties without
    reading the keys."""
    cdef const Slot* sa
    cdef const Slot* sb
    cdef int64_t m
    cdef int c
    if a.count != b.count:
        return a.count > b.count
    if a.prefix0 != b.prefix0:
        return a.prefix0 < b.prefix0
    if a.prefix1 != b.prefix1:
        return a.prefix1 < b.prefix1
    sa = &t.slots[a.slot]
    sb = &t.slots[b.slot]
    m = sa.len if sa.len < sb.len else sb.len
    if m > 0:
        c = memcmp(slot_key(t, sa), slot_key(t, sb), <size_t>m)
        if c != 0:
            return c < 0
    return sa.len < sb.len


cdef inline void swap_ranks(Rank* a, Rank* b) noexcept nogil:
    cdef Rank tmp = a[0]
    a[0] = b[0]
    b[0] = tmp


cdef void sift_down(const Table* t, Rank* r, int64_t root, int64_t n) noexcept nogil:
    """Restore the heap below ``root`` (the last ranked at the top)."""
    cdef int64_t child
    while 2 * root + 1 < n:
        child = 2 * root + 1
        if child + 1 < n and ranks_before(t, &r[child], &r[child + 1]):
            child += 1
        if not ranks_before(t, &r[root], &r[child]):
            return
        swap_ranks(&r[root], &r[child])
        root = child


cdef void heap_sort(const Table* t, Rank* r, int64_t n) noexcept nogil:
    cdef int64_t j
    for j in range(n // 2 - 1, -1, -1):
        sift_down(t, r, j, n)
    for j in range(n - 1, 0, -1):
        swap_ranks(&r[0], &r[j])
        sift_down(t, r, 0, j)


cdef void sort_ranks(const Table* t, Rank* r, int64_t n, int depth) noexcept nogil:
    """Sort ``r[:n]`` by :func:`ranks_before`, in place: quicksort (median of three,
    the larger side in the loop), insertion sort for short ranges, heapsort past
    ``depth`` levels so no input makes it quadratic. Keys are distinct, so the
    order is total and the result does not depend on the algorithm."""
    cdef int64_t i, j, mid
    cdef Rank pivot
    while n > 16:
        if depth == 0:
            heap_sort(t, r, n)
            return
        depth -= 1
        mid = n // 2
        if ranks_before(t, &r[mid], &r[0]):
            swap_ranks(&r[mid], &r[0])
        if ranks_before(t, &r[n - 1], &r[0]):
            swap_ranks(&r[n - 1], &r[0])
        if ranks_before(t, &r[n - 1], &r[mid]):
            swap_ranks(&r[n - 1], &r[mid])
        pivot = r[mid]      # r[0] <= pivot <= r[n-1]: both scans stop in bounds
        i = 0
        j = n - 1
        while True:
            while ranks_before(t, &r[i], &pivot):
                i += 1
            while ranks_before(t, &pivot, &r[j]):
                j -= 1
            if i >= j:
                break
            swap_ranks(&r[i], &r[j])
            i += 1
            j -= 1
        # r[:j+1] <= pivot <= r[j+1:]; recurse into the smaller side
        if j + 1 < n - j - 1:
            sort_ranks(t, r, j + 1, depth)
            r += j + 1
            n -= j + 1
        else:
            sort_ranks(t, r + j + 1, n - j - 1, depth)
            n = j + 1
    for i in range(1, n):
        pivot = r[i]
        j = i
        while j > 0 and ranks_before(t, &pivot, &r[j - 1]):
            r[j] = r[j - 1]
            j -= 1
        r[j] = pivot


cdef int depth_for(int64_t n) noexcept nogil:
    """Quicksort levels :func:`sort_ranks` may use on ``n`` ranks before it turns to
    heapsort: 2 log2(n)."""
    cdef int depth = 2
    while (<int64_t>1 << (depth // 2)) < n and depth < 126:
        depth += 2
    return depth


cdef inline uint64_t key_prefix(const uint8_t* k, int64_t n) noexcept nogil:
    """Bytes ``k[0:8]`` as a big-endian integer, zeros past ``n``: integers compare as
    the bytes do."""
    cdef uint64_t p = 0
    cdef int64_t j
    if n >= 8:
        return load_be64(k)
    for j in range(8):
        p = (p << 8) | (k[j] if j < n else 0)
    return p


cdef struct Item:
    uint64_t prefix     # the key's first 8 bytes, big-endian, zero-padded
    uint64_t prefix1    # its next 8 bytes
    uint32_t slot
    uint32_t count


cdef inline uint64_t item_key(const Item* a, int which) noexcept nogil:
    """The sort keys of :func:`sort_items`: 0 the count, descending; 1 the prefix."""
    return (0xFFFFFFFFULL - a.count) if which == 0 else a.prefix


cdef int sort_items(const Table* t, Item* a, int64_t n) noexcept nogil:
    """Sort ``a[:n]`` in the order of :func:`ranks_before`, with few bytes to move: a
    stable LSD radix sort on (count descending, prefix), ITEM_BITS bits a pass
    (2048 buckets: the lines being written stay in the cache), the digit counts of
    every pass from one read of the items, a pass whose digit is the same
    everywhere skipped (the count takes one or two); then each run that ties on
    both is ordered by :func:`sort_ranks`. -1 if out of memory."""
    cdef Item* tmp = <Item*>PyMem_RawMalloc(<size_t>n * sizeof(Item))
    cdef int64_t* hist = <int64_t*>PyMem_RawCalloc(
        (ITEM_PREFIX_PASSES + ITEM_COUNT_PASSES) * ITEM_BUCKETS, sizeof(int64_t))
    cdef Item* src = a
    cdef Item* dst = tmp
    cdef Item* swap
    cdef Rank* r
    cdef Vec ranks             # the ranks of a run
    cdef int64_t* h
    cdef int64_t i, j, total, run, q
    cdef int which, step, low, passes
    cdef uint64_t d, kp, kc
    if tmp == NULL or hist == NULL:
        PyMem_RawFree(tmp)
        PyMem_RawFree(hist)
        return -1
    vec_init(&ranks, sizeof(Rank))
    # hist[pass * ITEM_BUCKETS + digit]: the prefix passes, then the count passes
    for i in range(n):
        kp = item_key(&a[i], 1)
        kc = item_key(&a[i], 0)
        for step in range(ITEM_PREFIX_PASSES):
            hist[step * ITEM_BUCKETS + ((kp >> (step * ITEM_BITS)) & (ITEM_BUCKETS - 1))] += 1
        for step in range(ITEM_COUNT_PASSES):
            hist[(ITEM_PREFIX_PASSES + step) * ITEM_BUCKETS
                 + ((kc >> (step * ITEM_BITS)) & (ITEM_BUCKETS - 1))] += 1
    for which in range(1, -1, -1):        # least significant key first
        passes = ITEM_PREFIX_PASSES if which == 1 else ITEM_COUNT_PASSES
        for step in range(passes):
            low = step * ITEM_BITS
            h = hist + ((step if which == 1 else ITEM_PREFIX_PASSES + step) * ITEM_BUCKETS)
            d = (item_key(&src[0], which) >> low) & (ITEM_BUCKETS - 1)
            if h[d] == n:
                continue                  # one digit everywhere: nothing moves
            total = 0
            for i in range(ITEM_BUCKETS):
                j = h[i]
                h[i] = total
                total += j
            for i in range(n):
                d = (item_key(&src[i], which) >> low) & (ITEM_BUCKETS - 1)
                dst[h[d]] = src[i]
                h[d] += 1
            swap = src
            src = dst
            dst = swap
    if src != a:
        memcpy(a, src, <size_t>n * sizeof(Item))
    PyMem_RawFree(tmp)
    PyMem_RawFree(hist)
    i = 0
    while i < n:                          # runs that tie on count and prefix
        run = 1
        while i + run < n and a[i + run].count == a[i].count and a[i + run].prefix == a[i].prefix:
            run += 1
        if run > 1:
            if vec_reserve(&ranks, run) < 0:
                vec_free(&ranks)
                return -1
            r = <Rank*>ranks.data
            for q in range(run):
                r[q].count = a[i + q].count
                r[q].prefix0 = a[i + q].prefix
                r[q].prefix1 = a[i + q].prefix1
                r[q].slot = a[i + q].slot
            sort_ranks(t, r, run, depth_for(run))
            for q in range(run):
                a[i + q].slot = <uint32_t>r[q].slot
        i += run
    vec_free(&ranks)
    return 0


cdef int64_t rank_table(const Table* t, int64_t min_count, bint skip_reserved,
                        int64_t* order, int64_t* counts) noexcept nogil:
    """The slots of the keys counted at least ``min_count`` times (not the reserved
    spellings if ``skip_reserved``) into ``order``, ranked, and their counts into
    ``counts``; how many, -1 if out of memory. Both have room for ``t.n``.

    Compact 16-byte items (:func:`sort_items`, a radix sort) where every slot number
    and count fits in 32 bits, as always in practice; else 32-byte ranks sorted by
    comparison (:func:`rank_table_wide`)."""
    cdef Item* a
    cdef int64_t n
    if t.mask <= <int64_t>0xFFFFFFFF:
        a = <Item*>PyMem_RawMalloc(<size_t>(t.n if t.n > 0 else 1) * sizeof(Item))
        if a == NULL:
            return -1
        n = rank_items(t, min_count, skip_reserved, a, order, counts)
        PyMem_RawFree(a)
        if n != -2:
            return n
    return rank_table_wide(t, min_count, skip_reserved, order, counts)


cdef int64_t rank_items(const Table* t, int64_t min_count, bint skip_reserved, Item* a,
                        int64_t* order, int64_t* counts) noexcept nogil:
    """:func:`rank_table` through items (room for ``t.n`` in ``a``); -2 if a count
    does not fit in 32 bits."""
    cdef int64_t e, n = 0, j
    cdef const Slot* s
    cdef const uint8_t* k
    for e in range(t.mask + 1):
        s = &t.slots[e]
        if s.hash == 0 or s.value < min_count or (skip_reserved and is_reserved(t, e)):
            continue
        if s.value < 0 or s.value > <int64_t>0xFFFFFFFF:
            return -2
        k = <const uint8_t*>slot_key(t, s)
        a[n].prefix = key_prefix(k, s.len)
        a[n].prefix1 = key_prefix(k + 8, s.len - 8) if s.len > 8 else 0
        a[n].slot = <uint32_t>e
        a[n].count = <uint32_t>s.value
        n += 1
    if n > 0 and sort_items(t, a, n) < 0:
        return -1
    for j in range(n):
        order[j] = a[j].slot
        counts[j] = a[j].count
    return n


cdef int64_t rank_table_wide(const Table* t, int64_t min_count, bint skip_reserved,
                             int64_t* order, int64_t* counts) noexcept nogil:
    """:func:`rank_table` through 32-byte ranks: any count, any table size (counts of
    2**32 and more; a comparison sort, as it never runs on real data)."""
    cdef Rank* r = <Rank*>PyMem_RawMalloc(<size_t>(t.n if t.n > 0 else 1) * sizeof(Rank))
    cdef int64_t e, n = 0, j
    cdef const Slot* s
    cdef const uint8_t* k
    if r == NULL:
        return -1
    for e in range(t.mask + 1):
        s = &t.slots[e]
        if s.hash == 0 or s.value < min_count or (skip_reserved and is_reserved(t, e)):
            continue
        k = <const uint8_t*>slot_key(t, s)
        r[n].count = s.value
        r[n].prefix0 = key_prefix(k, s.len)
        r[n].prefix1 = key_prefix(k + 8, s.len - 8) if s.len > 8 else 0
        r[n].slot = e
        n += 1
    if n > 0:
        sort_ranks(t, r, n, depth_for(n))
    for j in range(n):
        order[j] = r[j].slot
        counts[j] = r[j].count
    PyMem_RawFree(r)
    return n


# ------------------------------------------------------------------- tokenising
cdef inline int64_t utf8_next(const uint8_t* s, int64_t n, int64_t i, uint32_t* cp) noexcept nogil:
    """Width (1-4) of the UTF-8 sequence at ``s[i]``, never past ``n``; its code
    point in ``cp``. The text comes from CPython's encoder, so it is valid UTF-8."""
    cdef uint8_t b = s[i]
    cdef int64_t w, k
    cdef uint32_t c
    if b < 0x80:
        cp[0] = b
        return 1
    if b < 0xE0:
        w = 2
        c = b & 0x1F
    elif b < 0xF0:
        w = 3
        c = b & 0x0F
    else:
        w = 4
        c = b & 0x07
    if i + w > n:
        w = n - i
    for k in range(1, w):
        c = (c << 6) | (s[i + k] & 0x3F)
    cp[0] = c
    return w


# What a byte says about whitespace, as str.split() sees it (filled at import):
# BYTE_TOKEN, not whitespace nor the start of any (most bytes: every other ASCII
# character, continuation bytes, lead bytes of no whitespace character); BYTE_SPACE,
# an ASCII whitespace character; BYTE_LEAD, the lead byte of a sequence that may
# be whitespace (decode and ask Py_UNICODE_ISSPACE).
cdef enum:
    BYTE_TOKEN = 0
    BYTE_SPACE = 1
    BYTE_LEAD = 2

cdef uint8_t BYTE_CLASS[256]


cdef void _fill_byte_class():
    cdef uint32_t cp
    cdef int b
    for b in range(256):
        BYTE_CLASS[b] = BYTE_TOKEN
    for b in range(128):
        if py_isspace(<Py_UCS4>b):
            BYTE_CLASS[b] = BYTE_SPACE
    for cp in range(0x80, 0x110000):
        if py_isspace(<Py_UCS4>cp):
            if cp < 0x800:
                b = 0xC0 | (cp >> 6)
            elif cp < 0x10000:
                b = 0xE0 | (cp >> 12)
            else:
                b = 0xF0 | (cp >> 18)
            BYTE_CLASS[b] = BYTE_LEAD


_fill_byte_class()


cdef int64_t split_ws(const char* text, int64_t n, Vec* spans, int64_t limit) noexcept nogil:
    """Byte spans ``(start, stop)`` of the tokens of the UTF-8 text ``text[:n]``, split
    at runs of whitespace as ``str.split()`` splits; at most ``limit`` tokens (all if
    ``limit < 0``). Returns the number of tokens, -1 if out of memory. Only a lead
    byte of a possible whitespace character is decoded (:data:`BYTE_CLASS`); every
    other byte costs a table look-up."""
    cdef const uint8_t* s = <const uint8_t*>text
    cdef int64_t i = 0, start, w, count = 0
    cdef int64_t* out = <int64_t*>spans.data
    cdef int64_t room = spans.cap // 2
    cdef uint8_t c
    cdef uint32_t cp
    while count != limit:
        while i < n:                    # whitespace before the token
            c = BYTE_CLASS[s[i]]
            if c == BYTE_TOKEN:
                break
            if c == BYTE_SPACE:
                i += 1
                continue
            w = utf8_next(s, n, i, &cp)
            if not py_isspace(<Py_UCS4>cp):
                break
            i += w
        if i >= n:
            break
        start = i
        while i < n:                    # the token
            c = BYTE_CLASS[s[i]]
            if c == BYTE_TOKEN:
                i += 1
                continue
            if c == BYTE_SPACE:
                break
            w = utf8_next(s, n, i, &cp)
            if py_isspace(<Py_UCS4>cp):
                break
            i += w
        if count == room:
            spans.n = 2 * count
            if vec_reserve(spans, 2 * count + 2) < 0:
                return -1
            out = <int64_t*>spans.data
            room = spans.cap // 2
        out[2 * count] = start
        out[2 * count + 1] = i
        count += 1
    spans.n = 2 * count
    return count


# ------------------------------------------------------------------------ chunks
cdef struct Chunk:
    int64_t n               # texts in the chunk
    const char** data       # UTF-8 of each text (a token list: its tokens run together)
    int64_t* size           # bytes
    int64_t* ntok           # -1: a str, split at whitespace (-2: an ASCII one); else a list
                            # of that many tokens
    int64_t* tok0           # a list's first token in toklens
    Vec toklens             # byte length of every token of the lists


cdef int chunk_init(Chunk* c) noexcept nogil:
    c.n = 0
    vec_init(&c.toklens, sizeof(int64_t))
    c.data = <const char**>PyMem_RawMalloc(CHUNK_TEXTS * sizeof(char*))
    c.size = <int64_t*>PyMem_RawMalloc(CHUNK_TEXTS * sizeof(int64_t))
    c.ntok = <int64_t*>PyMem_RawMalloc(CHUNK_TEXTS * sizeof(int64_t))
    c.tok0 = <int64_t*>PyMem_RawMalloc(CHUNK_TEXTS * sizeof(int64_t))
    if c.data == NULL or c.size == NULL or c.ntok == NULL or c.tok0 == NULL:
        return -1
    return 0


cdef void chunk_free(Chunk* c) noexcept nogil:
    PyMem_RawFree(c.data)
    PyMem_RawFree(c.size)
    PyMem_RawFree(c.ntok)
    PyMem_RawFree(c.tok0)
    c.data = NULL
    c.size = NULL
    c.ntok = NULL
    c.tok0 = NULL
    vec_free(&c.toklens)


cdef Py_ssize_t fill_chunk(Chunk* c, list texts, Py_ssize_t start, Py_ssize_t stop,
                           bint lowercase, object prepare, list keep) except -1:
    """Prepare ``texts[start:...]`` (with the GIL) until the chunk is full or ``stop``
    is reached; return the index after the last text taken. ``keep`` holds the
    objects whose buffers the chunk points into."""
    cdef Py_ssize_t i = start, j, q, ntok
    cdef int64_t nbytes = 0, pos, width
    cdef int64_t* lens
    cdef const uint8_t* u
    cdef uint32_t cp
    cdef object text, s, b
    cdef list tokens
    c.n = 0
    c.toklens.n = 0
    while i < stop and c.n < CHUNK_TEXTS and nbytes < CHUNK_BYTES:
        text = texts[i]
        # the ASCII branch of vocab._normalize, without a call
        if PyUnicode_CheckExact(text) and text.isascii():
            s = text.lower() if lowercase else text
            keep.append(s)
            c.data[c.n] = <const char*>PyUnicode_DATA(s)   # ASCII: its UTF-8 bytes
            c.size[c.n] = PyUnicode_GET_LENGTH(s)
            c.ntok[c.n] = -2
        else:
            s = prepare(text, i)
            if isinstance(s, str):
                b = PyUnicode_AsUTF8String(s)   # prepare refused lone surrogates
                keep.append(b)
                c.data[c.n] = PyBytes_AS_STRING(b)
                c.size[c.n] = PyBytes_GET_SIZE(b)
                c.ntok[c.n] = -1
            else:
                tokens = <list?>s
                ntok = len(tokens)
                b = PyUnicode_AsUTF8String("".join(tokens))
                keep.append(b)
                c.data[c.n] = PyBytes_AS_STRING(b)
                c.size[c.n] = PyBytes_GET_SIZE(b)
                c.ntok[c.n] = ntok
                c.tok0[c.n] = c.toklens.n
                if vec_reserve(&c.toklens, c.toklens.n + ntok) < 0:
                    raise MemoryError()
                # byte length of each token: walk its code points through the bytes
                lens = <int64_t*>c.toklens.data + c.toklens.n
                u = <const uint8_t*>c.data[c.n]
                pos = 0
                for j in range(ntok):
                    width = pos
                    for q in range(len(tokens[j])):
                        pos += utf8_next(u, c.size[c.n], pos, &cp)
                    lens[j] = pos - width
                c.toklens.n += ntok
        nbytes += c.size[c.n]
        c.n += 1
        i += 1
    return i


cdef int64_t chunk_tokens(const Chunk* c, int64_t k, Vec* spans, int64_t limit) noexcept nogil:
    """Token spans of text ``k`` of the chunk (see :func:`split_ws`)."""
    cdef int64_t m, j, pos = 0, L
    cdef const int64_t* lens
    cdef int64_t* sp
    if c.ntok[k] == -2 and limit < 0 and HAVE_SPLIT_ASCII and c.size[k] <= SPLIT_ASCII_MAX:
        if vec_reserve(spans, c.size[k] + 2) < 0:
            return -1
        m = split_ascii(<const uint8_t*>c.data[k], c.size[k], <int64_t*>spans.data)
        spans.n = 2 * m
        return m
    if c.ntok[k] < 0:
        return split_ws(c.data[k], c.size[k], spans, limit)
    m = c.ntok[k]
    if 0 <= limit < m:
        m = limit
    spans.n = 0
    if vec_reserve(spans, 2 * m) < 0:
        return -1
    lens = <const int64_t*>c.toklens.data + c.tok0[k]
    sp = <int64_t*>spans.data
    for j in range(m):
        L = lens[j]
        sp[2 * j] = pos
        sp[2 * j + 1] = pos + L
        pos += L
    spans.n = 2 * m
    return m


# ------------------------------------------------------------------ n-gram keys
cdef int64_t gram_keys(const char* s, const int64_t* sp, int64_t ntok, int64_t lo,
                       int64_t hi, Vec* key, Vec* koff) noexcept nogil:
    """The word n-grams (``n = lo..hi``, ``lo >= 2``) of a text's tokens, by ``n``
    then position, each its tokens joined by single spaces, one after another into
    ``key``; where each starts, then the end, into ``koff``. How many, -1 if out of
    memory."""
    cdef int64_t n, i, t, j, L, need = 0, m = 0
    cdef char* out
    cdef int64_t* off
    for n in range(lo, hi + 1):      # room for all of them first
        for i in range(ntok - n + 1):
            need += n - 1 + sp[2 * (i + n - 1) + 1] - sp[2 * i]
            m += 1
    if vec_reserve(key, need) < 0 or vec_reserve(koff, m + 1) < 0:
        return -1
    out = key.data
    off = <int64_t*>koff.data
    key.n = 0
    m = 0
    for n in range(lo, hi + 1):
        for i in range(ntok - n + 1):
            off[m] = key.n
            m += 1
            for t in range(i, i + n):
                if t > i:
                    out[key.n] = 32     # " "
                    key.n += 1
                L = sp[2 * t + 1] - sp[2 * t]
                for j in range(L):
                    out[key.n + j] = s[sp[2 * t] + j]
                key.n += L
    off[m] = key.n
    koff.n = m + 1
    return m


cdef int token_hashes(const char* s, const int64_t* sp, int64_t ntok, const Table* t,
                      Work* w) noexcept nogil:
    """poly() and POLY^length of each token into ``w.th``, ``w.tp``, its table hash
    into ``w.hashes``, prefetching its slot in ``t``."""
    cdef int64_t j, L
    cdef uint64_t h
    if (vec_reserve(&w.th, ntok) < 0 or vec_reserve(&w.tp, ntok) < 0
            or vec_reserve(&w.hashes, ntok) < 0):
        return -1
    for j in range(ntok):
        L = sp[2 * j + 1] - sp[2 * j]
        h = poly(s + sp[2 * j], L)
        (<uint64_t*>w.th.data)[j] = h
        (<uint64_t*>w.tp.data)[j] = poly_pow(L)
        h = mix(h)
        (<uint64_t*>w.hashes.data)[j] = h
        prefetch_slot(t, h)
    w.th.n = w.tp.n = w.hashes.n = ntok
    return 0


cdef int64_t gram_hashes(const int64_t* sp, int64_t ntok, int64_t lo, int64_t hi,
                         const Table* t, Work* w) noexcept nogil:
    """The table hash and byte length of each word n-gram (``n = lo..hi``, by ``n``
    then position) into ``w.hashes`` and ``w.glen``, composed from the tokens'
    (``w.th``, ``w.tp``: :func:`token_hashes` first), prefetching its slot in ``t``.
    How many, -1 if out of memory."""
    cdef int64_t n, i, k, L, m = 0
    cdef const uint64_t* th = <const uint64_t*>w.th.data
    cdef const uint64_t* tp = <const uint64_t*>w.tp.data
    cdef uint64_t h
    for n in range(lo, hi + 1):
        if ntok >= n:
            m += ntok - n + 1
    if vec_reserve(&w.hashes, m) < 0 or vec_reserve(&w.glen, m) < 0:
        return -1
    m = 0
    for n in range(lo, hi + 1):
        for i in range(ntok - n + 1):
            h = th[i]
            L = sp[2 * i + 1] - sp[2 * i]
            for k in range(i + 1, i + n):
                h = (h * POLY + 32) * tp[k] + th[k]     # + " " + token k
                L += 1 + sp[2 * k + 1] - sp[2 * k]
            h = mix(h)
            (<uint64_t*>w.hashes.data)[m] = h
            (<int64_t*>w.glen.data)[m] = L
            prefetch_slot(t, h)
            m += 1
    w.hashes.n = w.glen.n = m
    return m


cdef int bucket_hashes(const Vec* key, const Vec* koff, int64_t n_buckets, int64_t* buckets,
                       Vec* hashes) noexcept nogil:
    """The bucket of each n-gram of :func:`gram_keys` into ``hashes``, prefetching
    ``buckets[bucket]`` if given."""
    cdef int64_t j, m = koff.n - 1
    cdef const int64_t* off = <const int64_t*>koff.data
    cdef uint64_t h
    if vec_reserve(hashes, m) < 0:
        return -1
    for j in range(m):
        h = fnv1a_32(key.data + off[j], off[j + 1] - off[j]) % <uint32_t>n_buckets
        if buckets != NULL:
            prefetch(&buckets[h])
        (<uint64_t*>hashes.data)[j] = h
    hashes.n = m
    return 0


cdef int64_t mark_word(const char* w, int64_t L, Vec* marked, Vec* cps) noexcept nogil:
    """``"<" + w + ">"`` into ``marked``, and the byte offset of each of its code
    points, then its end, into ``cps``; the number of code points, -1 if out of
    memory."""
    cdef int64_t j
    marked.n = 0
    cps.n = 0
    if (push_bytes(marked, "<", 1) < 0 or push_bytes(marked, w, L) < 0
            or push_bytes(marked, ">", 1) < 0):
        return -1
    if vec_reserve(cps, marked.n + 1) < 0:
        return -1
    for j in range(marked.n):
        if (<uint8_t>marked.data[j] & 0xC0) != 0x80:   # not a continuation byte
            (<int64_t*>cps.data)[cps.n] = j
            cps.n += 1
    (<int64_t*>cps.data)[cps.n] = marked.n
    return cps.n


# -------------------------------------------------------------- per-thread state
cdef struct Work:
    Vec spans           # int64 (start, stop) of the tokens of one text
    Vec key             # char: the joined word n-grams of one text, one after another
    Vec koff            # int64: where each starts in key (and the end)
    Vec hashes          # uint64: the table hash (or bucket) of each token or n-gram of a text
    Vec th              # uint64: poly() of each token of one text
    Vec tp              # uint64: POLY^length of each token
    Vec glen            # int64: byte length of each word n-gram of one text
    Vec marked          # char: "<word>"
    Vec cps             # int64: code point offsets in marked
    Vec tmp             # int32: character n-gram ids of one word
    Vec ids             # int32: output ids
    Vec shares          # float64: output shares
    Vec lens            # int64: ids per text


cdef void work_init(Work* w) noexcept nogil:
    vec_init(&w.spans, sizeof(int64_t))
    vec_init(&w.key, 1)
    vec_init(&w.koff, sizeof(int64_t))
    vec_init(&w.hashes, sizeof(uint64_t))
    vec_init(&w.th, sizeof(uint64_t))
    vec_init(&w.tp, sizeof(uint64_t))
    vec_init(&w.glen, sizeof(int64_t))
    vec_init(&w.marked, 1)
    vec_init(&w.cps, sizeof(int64_t))
    vec_init(&w.tmp, sizeof(int32_t))
    vec_init(&w.ids, sizeof(int32_t))
    vec_init(&w.shares, sizeof(double))
    vec_init(&w.lens, sizeof(int64_t))


cdef void work_free(Work* w) noexcept nogil:
    vec_free(&w.spans)
    vec_free(&w.key)
    vec_free(&w.koff)
    vec_free(&w.hashes)
    vec_free(&w.th)
    vec_free(&w.tp)
    vec_free(&w.glen)
    vec_free(&w.marked)
    vec_free(&w.cps)
    vec_free(&w.tmp)
    vec_free(&w.ids)
    vec_free(&w.shares)
    vec_free(&w.lens)


# ------------------------------------------------------------------ text passes
cdef struct Job:
    bint window             # Index: the window encoding, else the bag
    bint shares             # bag: also the share of each id
    int32_t* out            # window: one row of ``width`` ids per text
    int64_t width


cdef class TextPass:
    """One pass over texts, a chunk at a time: the texts are prepared with the GIL
    (:func:`fill_chunk`), then :meth:`text` runs on each of them without it.
    Counting and both encoders are such passes."""

    cdef int text(self, const Chunk* c, int64_t k, Work* w, const Job* job,
                  Py_ssize_t row) noexcept nogil:
        return 0

    cdef int run(self, list texts, Py_ssize_t start, Py_ssize_t stop, bint lowercase,
                 prepare, Work* w, const Job* job) except -1:
        """Run :meth:`text` on ``texts[start:stop]``; ``row`` counts from 0 at
        ``start``. A kernel's -1 (out of memory) becomes MemoryError."""
        cdef Chunk c
        cdef int64_t k
        cdef int rc = 0
        cdef Py_ssize_t i = start, row = 0
        try:
            if chunk_init(&c) < 0:
                raise MemoryError()
            while i < stop:
                keep = []
                i = fill_chunk(&c, texts, i, stop, lowercase, prepare, keep)
                with nogil:
                    for k in range(c.n):
                        rc = self.text(&c, k, w, job, row + k)
                        if rc < 0:
                            break
                if rc < 0:
                    raise MemoryError()
                row += c.n
        finally:
            chunk_free(&c)
        return 0


# ---------------------------------------------------------------------- counting
cdef class Counter(TextPass):
    """Counts of the unigrams and word n-grams of a corpus (and, afterwards, of the
    character n-grams of its words), or with ``n_buckets`` the n-gram counts per
    bucket: the fitting half of the compiled path."""

    cdef Table words
    cdef Table grams
    cdef Table chars
    cdef int64_t* buckets
    cdef int64_t n_buckets
    cdef int64_t n_tokens_
    cdef int glo, hi        # word n-grams counted: n = glo..hi (glo >= 2)

    def __cinit__(self, int lo, int hi, int64_t n_buckets):
        self.glo = lo if lo > 2 else 2
        self.hi = hi
        self.n_buckets = n_buckets
        self.buckets = NULL
        if table_init(&self.words) < 0 or table_init(&self.grams) < 0 or table_init(&self.chars) < 0:
            raise MemoryError()
        if n_buckets > 0:
            self.buckets = <int64_t*>PyMem_RawCalloc(<size_t>n_buckets, sizeof(int64_t))
            if self.buckets == NULL:
                raise MemoryError()

    def __dealloc__(self):
        table_free(&self.words)
        table_free(&self.grams)
        table_free(&self.chars)
        PyMem_RawFree(self.buckets)

    @property
    def n_tokens(self):
        """Unigram occurrences counted, the reserved spellings included."""
        return self.n_tokens_

    cdef Table* group(self, int g) except NULL:
        if g == GROUP_WORDS:
            return &self.words
        if g == GROUP_GRAMS:
            return &self.grams
        if g == GROUP_CHARS:
            return &self.chars
        raise ValueError(f"no group {g}")

    cdef int text(self, const Chunk* c, int64_t k, Work* w, const Job* job,
                  Py_ssize_t row) noexcept nogil:
        cdef int64_t ntok = chunk_tokens(c, k, &w.spans, -1)
        cdef const char* s = c.data[k]
        cdef const int64_t* sp
        cdef const int64_t* off
        cdef const uint64_t* hs
        cdef int64_t t, j, m, n, i, e, empty = 0
        if ntok < 0:
            return -1
        sp = <const int64_t*>w.spans.data
        if token_hashes(s, sp, ntok, &self.words, w) < 0:
            return -1
        hs = <const uint64_t*>w.hashes.data
        for t in range(ntok):
            if table_add(&self.words, s + sp[2 * t], sp[2 * t + 1] - sp[2 * t], hs[t], 1, True) < 0:
                return -1
        self.n_tokens_ += ntok
        if self.hi < self.glo:
            return 0
        if self.n_buckets > 0:
            m = gram_keys(s, sp, ntok, self.glo, self.hi, &w.key, &w.koff)
            if m < 0 or bucket_hashes(&w.key, &w.koff, self.n_buckets, self.buckets,
                                      &w.hashes) < 0:
                return -1
            hs = <const uint64_t*>w.hashes.data
            for j in range(m):
                self.buckets[hs[j]] += 1
            return 0
        if gram_hashes(sp, ntok, self.glo, self.hi, &self.grams, w) < 0:
            return -1
        hs = <const uint64_t*>w.hashes.data
        off = <const int64_t*>w.glen.data
        j = 0
        for n in range(self.glo, self.hi + 1):
            for i in range(ntok - n + 1):
                e = table_find_gram(&self.grams, s, sp, i, n, off[j], hs[j], &empty)
                if e >= 0:
                    self.grams.slots[e].value += 1
                elif table_put_gram(&self.grams, empty, s, sp, i, n, off[j], hs[j], 1) < 0:
                    return -1
                j += 1
        return 0

    def add(self, list texts, Py_ssize_t start, Py_ssize_t stop, bint lowercase, prepare):
        """Count ``texts[start:stop]`` (one pass, in chunks)."""
        cdef Work w
        cdef Job job = Job(False, False, NULL, 0)
        work_init(&w)
        try:
            self.run(texts, start, stop, lowercase, prepare, &w, &job)
        finally:
            work_free(&w)

    def merge(self, Counter other):
        """Add the counts of ``other`` (counted with the same settings) to these."""
        cdef int64_t e, j
        cdef const Slot* s
        cdef Table* src
        cdef Table* dst
        cdef int rc = 0
        if (other.glo, other.hi, other.n_buckets) != (self.glo, self.hi, self.n_buckets):
            raise ValueError("cannot merge counts made with other settings")
        with nogil:
            for j in range(2):
                src = &other.words if j == 0 else &other.grams
                dst = &self.words if j == 0 else &self.grams
                for e in range(src.mask + 1):
                    s = &src.slots[e]
                    if s.hash != 0 and table_add(dst, slot_key(src, s), s.len, s.hash,
                                                 s.value, True) < 0:
                        rc = -1
                        break
                if rc < 0:
                    break
        if rc < 0:
            raise MemoryError()
        for j in range(self.n_buckets):
            self.buckets[j] += other.buckets[j]
        self.n_tokens_ += other.n_tokens_

    def count_chars(self, int lo, int hi):
        """Count the character n-grams (``n = lo..hi``) of every counted word but the
        reserved spellings, each as often as the word occurs."""
        cdef Work w
        cdef int64_t e, n, i, size, top, g0, gl, count
        cdef int rc = 0
        cdef const int64_t* cps
        cdef const char* g
        work_init(&w)
        try:
            with nogil:
                for e in range(self.words.mask + 1):
                    if self.words.slots[e].hash == 0 or is_reserved(&self.words, e):
                        continue
                    count = self.words.slots[e].value
                    size = mark_word(slot_key(&self.words, &self.words.slots[e]),
                                     self.words.slots[e].len, &w.marked, &w.cps)
                    if size < 0:
                        rc = -1
                        break
                    cps = <const int64_t*>w.cps.data
                    top = hi if hi < size - 1 else size - 1
                    for n in range(lo, top + 1):
                        for i in range(size - n + 1):
                            g = w.marked.data + cps[i]
                            gl = cps[i + n] - cps[i]
                            if self.n_buckets > 0:
                                self.buckets[fnv1a_32(g, gl) % <uint32_t>self.n_buckets] += count
                            elif table_add(&self.chars, g, gl, hash64(g, gl), count, True) < 0:
                                rc = -1
                                break
                        if rc < 0:
                            break
                    if rc < 0:
                        break
            if rc < 0:
                raise MemoryError()
        finally:
            work_free(&w)

    def ranked(self, int g, int64_t min_count):
        """``(order, counts)``: the entries of group ``g`` (0 words, 1 word n-grams,
        2 character n-grams) counted at least ``min_count`` times, by descending
        count, ties by token (the reserved spellings left out), and their counts;
        both int64."""
        cdef Table* t = self.group(g)
        cdef int64_t n = 0
        order = np.empty(t.n, dtype=np.int64)
        counts = np.empty(t.n, dtype=np.int64)
        cdef int64_t[::1] o = order
        cdef int64_t[::1] cv = counts
        if t.n > 0:
            with nogil:
                n = rank_table(t, min_count, g == GROUP_WORDS, &o[0], &cv[0])
        if n < 0:
            raise MemoryError()
        return order[:n], counts[:n]

    def bucket_counts(self):
        """Counts per bucket (int64), with ``n_buckets``."""
        out = np.zeros(self.n_buckets, dtype=np.int64)
        cdef int64_t[::1] v = out
        if self.n_buckets > 0:
            memcpy(&v[0], self.buckets, <size_t>self.n_buckets * sizeof(int64_t))
        return out


# ----------------------------------------------------------------------- look-up
cdef class Index(TextPass):
    """The look-up tables of a fitted vocabulary and the encoders that use them:
    the encoding half of the compiled path. Read-only once built, so any number of
    threads may encode with it at once.

    Ids: words ``2 .. n_unigrams-1``; word n-grams from ``n_unigrams``; character
    n-grams from ``char_offset``; with ``n_buckets``, both kinds of n-grams hash to
    ``n_unigrams + fnv1a_32(utf8) % n_buckets`` instead.
    """

    cdef Table words
    cdef Table grams
    cdef Table chars
    cdef int lo, hi, clo, chi
    cdef int64_t n_unigrams, char_offset, n_buckets
    cdef Vec piece_ptr      # int64: word id - 2 -> its first piece; n_unigrams - 1 of them
    cdef Vec piece_ids      # int32: each word's id, then its character n-gram ids

    def __cinit__(self, int lo, int hi, int clo, int chi, int64_t n_unigrams,
                  int64_t char_offset, int64_t n_buckets):
        self.lo = lo
        self.hi = hi
        self.clo = clo
        self.chi = chi
        self.n_unigrams = n_unigrams
        self.char_offset = char_offset
        self.n_buckets = n_buckets
        vec_init(&self.piece_ptr, sizeof(int64_t))
        vec_init(&self.piece_ids, sizeof(int32_t))
        if table_init(&self.words) < 0 or table_init(&self.grams) < 0 or table_init(&self.chars) < 0:
            raise MemoryError()

    def __dealloc__(self):
        table_free(&self.words)
        table_free(&self.grams)
        table_free(&self.chars)
        vec_free(&self.piece_ptr)
        vec_free(&self.piece_ids)

    cdef Table* group(self, int g) except NULL:
        if g == GROUP_WORDS:
            return &self.words
        if g == GROUP_GRAMS:
            return &self.grams
        if g == GROUP_CHARS:
            return &self.chars
        raise ValueError(f"no group {g}")

    def add_counted(self, int g, Counter counter, const int64_t[::1] order, int64_t first_id):
        """Give the entries ``order`` (from :meth:`Counter.ranked`) of the counter's
        group ``g`` the ids ``first_id, first_id + 1, ...``. If they are most of its
        keys, the counter's table itself becomes this group's (the counter keeps an
        empty one), the keys left out marked absent: no copy, no second table at
        once. Otherwise the kept keys are copied."""
        cdef Table* src = counter.group(g)
        cdef Table* dst = self.group(g)
        cdef const Slot* s
        cdef Table swap
        cdef Py_ssize_t j
        cdef int64_t e
        cdef int rc = 0
        if dst.n != 0:
            raise ValueError("add_counted fills an empty group")
        if 2 * order.shape[0] >= src.n:
            swap = dst[0]
            dst[0] = src[0]
            src[0] = swap
            with nogil:
                if order.shape[0] < dst.n:      # (all kept: every value is set below)
                    for e in range(dst.mask + 1):
                        if dst.slots[e].hash != 0:
                            dst.slots[e].value = -1
                for j in range(order.shape[0]):
                    dst.slots[order[j]].value = first_id + j
            return
        with nogil:
            for j in range(order.shape[0]):
                s = &src.slots[order[j]]
                if table_add(dst, slot_key(src, s), s.len, s.hash, first_id + j, False) < 0:
                    rc = -1
                    break
        if rc < 0:
            raise MemoryError()

    def add_tokens(self, int g, list tokens, int64_t first_id):
        """Give the str ``tokens`` the ids ``first_id, first_id + 1, ...``; a token
        seen twice keeps its first id."""
        cdef Table* dst = self.group(g)
        cdef Py_ssize_t j
        cdef bytes b
        cdef const char* p
        cdef int64_t L
        for j in range(len(tokens)):
            b = PyUnicode_AsUTF8String(tokens[j])
            p = PyBytes_AS_STRING(b)
            L = PyBytes_GET_SIZE(b)
            if table_add(dst, p, L, hash64(p, L), first_id + j, False) < 0:
                raise MemoryError()

    def tokens(self, int g, int64_t first_id, int64_t count):
        """The tokens (str) of group ``g``, which holds the ids ``first_id ..
        first_id + count - 1``, in id order."""
        cdef Table* t = self.group(g)
        cdef int64_t e, v
        cdef const Slot* s
        out = [None] * count
        for e in range(t.mask + 1):
            s = &t.slots[e]
            v = s.value - first_id
            if s.hash != 0 and s.value >= 0:
                if not 0 <= v < count or out[v] is not None:
                    raise ValueError(f"id {s.value} out of range or given twice")
                out[v] = PyUnicode_DecodeUTF8(<char*>slot_key(t, s), s.len, NULL)
        if count > 0 and any(x is None for x in out):
            raise ValueError(f"group {g} lacks some of its {count} ids")
        return out

    def finish(self):
        """Compute each word's pieces (its id, then its character n-gram ids) once,
        after the words and character n-grams are in."""
        cdef Work w
        cdef int64_t e, j, v, found = 0, n_words = self.n_unigrams - 2
        cdef int rc = 0
        cdef int64_t* slot_of
        cdef const Slot* s
        if self.chi == 0:
            return
        work_init(&w)
        slot_of = <int64_t*>PyMem_RawMalloc(<size_t>(n_words if n_words > 0 else 1) * sizeof(int64_t))
        try:
            if slot_of == NULL or vec_reserve(&self.piece_ptr, n_words + 1) < 0:
                raise MemoryError()
            for j in range(n_words):
                slot_of[j] = -1
            for e in range(self.words.mask + 1):
                v = self.words.slots[e].value
                if self.words.slots[e].hash != 0 and v >= 0:
                    if not 2 <= v < self.n_unigrams or slot_of[v - 2] >= 0:
                        raise ValueError(f"word id {v} out of range or given twice")
                    slot_of[v - 2] = e
                    found += 1
            if found != n_words:
                raise ValueError(f"{found} distinct words for {n_words} word ids")
            with nogil:
                for j in range(n_words):
                    s = &self.words.slots[slot_of[j]]
                    (<int64_t*>self.piece_ptr.data)[j] = self.piece_ids.n
                    w.tmp.n = 0
                    if (push_i32(&self.piece_ids, <int32_t>s.value) < 0
                            or self.char_ids(slot_key(&self.words, s), s.len, &w) < 0
                            or push_i32s(&self.piece_ids, <int32_t*>w.tmp.data, w.tmp.n) < 0):
                        rc = -1
                        break
                if rc == 0:
                    (<int64_t*>self.piece_ptr.data)[n_words] = self.piece_ids.n
                    self.piece_ptr.n = n_words + 1
            if rc < 0:
                raise MemoryError()
        finally:
            PyMem_RawFree(slot_of)
            work_free(&w)

    # -- per text, without the GIL -------------------------------------------

    cdef int64_t char_ids(self, const char* word, int64_t L, Work* w) noexcept nogil:
        """Append the ids of the known character n-grams of ``word`` (every one with
        buckets) to ``w.tmp``, by ``n`` then position; how many, -1 if out of memory."""
        cdef int64_t size = mark_word(word, L, &w.marked, &w.cps)
        cdef int64_t n, i, gl, e, top, before = w.tmp.n
        cdef const int64_t* cps
        cdef const char* g
        cdef int32_t gid
        if size < 0:
            return -1
        cps = <const int64_t*>w.cps.data
        top = self.chi if self.chi < size - 1 else size - 1
        for n in range(self.clo, top + 1):
            for i in range(size - n + 1):
                g = w.marked.data + cps[i]
                gl = cps[i + n] - cps[i]
                if self.n_buckets > 0:
                    gid = <int32_t>(self.n_unigrams + fnv1a_32(g, gl) % <uint32_t>self.n_buckets)
                else:
                    e = table_get(&self.chars, g, gl, hash64(g, gl))
                    if e < 0:
                        continue
                    gid = <int32_t>e
                if push_i32(&w.tmp, gid) < 0:
                    return -1
        return w.tmp.n - before

    cdef inline int64_t find_word(self, const char* s, int64_t L) noexcept nogil:
        """Id of the word ``s[:L]``, -1 if unknown."""
        return table_get(&self.words, s, L, hash64(s, L))

    cdef int text(self, const Chunk* c, int64_t k, Work* w, const Job* job,
                  Py_ssize_t row) noexcept nogil:
        if job.window:
            return self.window_text(c, k, w, job.out + row * job.width, job.width)
        return self.bag_text(c, k, w, job.shares)

    cdef int window_text(self, const Chunk* c, int64_t k, Work* w, int32_t* dst,
                         int64_t n) noexcept nogil:
        """The ids of the first ``n`` tokens of text ``k``, then PAD, into ``dst``."""
        cdef int64_t t, wid, ntok = chunk_tokens(c, k, &w.spans, n)
        cdef const int64_t* sp
        if ntok < 0:
            return -1
        sp = <const int64_t*>w.spans.data
        for t in range(ntok):
            wid = self.find_word(c.data[k] + sp[2 * t], sp[2 * t + 1] - sp[2 * t])
            dst[t] = UNK_ID if wid < 0 else <int32_t>wid
        for t in range(ntok, n):
            dst[t] = PAD_ID
        return 0

    cdef int bag_text(self, const Chunk* c, int64_t k, Work* w, bint want_shares) noexcept nogil:
        """Append the bag ids (and shares) of text ``k`` and its id count."""
        cdef int64_t ntok = chunk_tokens(c, k, &w.spans, -1)
        cdef const char* s = c.data[k]
        cdef const int64_t* sp
        cdef const int64_t* off
        cdef const uint64_t* hs = NULL
        cdef int64_t t, j, n, i, e, L, m, p0, start = w.ids.n, lo_gram, wid
        if ntok < 0:
            return -1
        sp = <const int64_t*>w.spans.data
        if self.chi > 0 or self.lo == 1:
            if token_hashes(s, sp, ntok, &self.words, w) < 0:
                return -1
            hs = <const uint64_t*>w.hashes.data
        if self.chi > 0:
            for t in range(ntok):
                L = sp[2 * t + 1] - sp[2 * t]
                wid = table_get(&self.words, s + sp[2 * t], L, hs[t])
                if wid >= 0:    # a known word: its cached pieces
                    p0 = (<int64_t*>self.piece_ptr.data)[wid - 2]
                    m = (<int64_t*>self.piece_ptr.data)[wid - 1] - p0
                    if push_i32s(&w.ids, <int32_t*>self.piece_ids.data + p0, m) < 0:
                        return -1
                else:           # unknown: its known character n-grams, or UNK
                    w.tmp.n = 0
                    m = self.char_ids(s + sp[2 * t], L, w)
                    if m < 0:
                        return -1
                    if m == 0:
                        m = 1
                        if push_i32(&w.ids, UNK_ID) < 0:
                            return -1
                    elif push_i32s(&w.ids, <int32_t*>w.tmp.data, m) < 0:
                        return -1
                if want_shares and push_f64_n(&w.shares, 1.0 / <double>m, m) < 0:
                    return -1
        elif self.lo == 1:
            if vec_reserve(&w.ids, w.ids.n + ntok) < 0:
                return -1
            for t in range(ntok):
                wid = table_get(&self.words, s + sp[2 * t], sp[2 * t + 1] - sp[2 * t], hs[t])
                (<int32_t*>w.ids.data)[w.ids.n + t] = UNK_ID if wid < 0 else <int32_t>wid
            w.ids.n += ntok
            if want_shares and push_f64_n(&w.shares, 1.0, ntok) < 0:
                return -1
        lo_gram = self.lo if self.lo > 2 else 2
        if self.hi >= lo_gram and (self.n_buckets > 0 or self.grams.n > 0):
            if self.n_buckets > 0:
                m = gram_keys(s, sp, ntok, lo_gram, self.hi, &w.key, &w.koff)
                if m < 0 or bucket_hashes(&w.key, &w.koff, self.n_buckets, NULL, &w.hashes) < 0:
                    return -1
            else:
                if self.chi == 0 and self.lo != 1:      # the tokens are not hashed yet
                    if token_hashes(s, sp, ntok, &self.words, w) < 0:
                        return -1
                m = gram_hashes(sp, ntok, lo_gram, self.hi, &self.grams, w)
                if m < 0:
                    return -1
            hs = <const uint64_t*>w.hashes.data
            off = <const int64_t*>w.glen.data
            if vec_reserve(&w.ids, w.ids.n + m) < 0:
                return -1
            L = w.ids.n
            j = 0
            for n in range(lo_gram, self.hi + 1):
                for i in range(ntok - n + 1):
                    if self.n_buckets > 0:
                        wid = self.n_unigrams + <int64_t>hs[j]
                    else:
                        e = table_find_gram(&self.grams, s, sp, i, n, off[j], hs[j], NULL)
                        wid = -1 if e < 0 else self.grams.slots[e].value
                    j += 1
                    if wid < 0:
                        continue
                    (<int32_t*>w.ids.data)[w.ids.n] = <int32_t>wid
                    w.ids.n += 1
            if want_shares and push_f64_n(&w.shares, 1.0, w.ids.n - L) < 0:
                return -1
        return push_i64(&w.lens, w.ids.n - start)

    # -- Python entry points ---------------------------------------------------

    def encode_bag(self, list texts, Py_ssize_t start, Py_ssize_t stop, bint lowercase,
                   prepare, bint want_shares):
        """Bag ids of ``texts[start:stop]``: ``(lengths, ids, shares)``, int64 ids
        per text, the concatenated int32 ids, and their float64 shares (None unless
        ``want_shares``)."""
        cdef Work w
        cdef Job job = Job(False, want_shares, NULL, 0)
        work_init(&w)
        try:
            self.run(texts, start, stop, lowercase, prepare, &w, &job)
            lens = vec_array(&w.lens, np.int64)
            vec_free(&w.lens)
            ids = vec_array(&w.ids, np.int32)
            vec_free(&w.ids)
            shares = vec_array(&w.shares, np.float64) if want_shares else None
            return lens, ids, shares
        finally:
            work_free(&w)

    def encode_window(self, list texts, Py_ssize_t start, Py_ssize_t stop, bint lowercase,
                      prepare, int32_t[:, ::1] out):
        """Row ``i`` of ``out`` (for text ``start + i``): the ids of its first
        ``out.shape[1]`` tokens, then PAD."""
        cdef Work w
        cdef Job job = Job(True, False, NULL, out.shape[1])
        if out.shape[0] != stop - start:
            raise ValueError("out must have one row per text")
        if out.shape[0] > 0 and out.shape[1] > 0:
            job.out = &out[0, 0]
        work_init(&w)
        try:
            self.run(texts, start, stop, lowercase, prepare, &w, &job)
        finally:
            work_free(&w)

    def subword_ids(self, str word):
        """Ids (int32) of the known character n-grams of ``word`` (already
        normalised as the texts are)."""
        cdef bytes b = PyUnicode_AsUTF8String(word)
        cdef const char* p = PyBytes_AS_STRING(b)
        cdef int64_t L = PyBytes_GET_SIZE(b), wid, p0, m
        cdef Work w
        if self.chi == 0:
            return np.zeros(0, dtype=np.int32)
        work_init(&w)
        try:
            wid = self.find_word(p, L)
            if wid >= 0:
                p0 = (<int64_t*>self.piece_ptr.data)[wid - 2] + 1
                m = (<int64_t*>self.piece_ptr.data)[wid - 1] - p0
                if push_i32s(&w.tmp, <int32_t*>self.piece_ids.data + p0, m) < 0:
                    raise MemoryError()
            elif self.char_ids(p, L, &w) < 0:
                raise MemoryError()
            return vec_array(&w.tmp, np.int32)
        finally:
            work_free(&w)


def split_texts(list texts, bint lowercase, prepare):
    """The tokens of each text as the compiled path sees them (for the tests)."""
    cdef Chunk c
    cdef Work w
    cdef Py_ssize_t i = 0, n = len(texts)
    cdef int64_t k, t, ntok
    cdef const int64_t* sp
    out = []
    work_init(&w)
    try:
        if chunk_init(&c) < 0:
            raise MemoryError()
        while i < n:
            keep = []
            i = fill_chunk(&c, texts, i, n, lowercase, prepare, keep)
            for k in range(c.n):
                ntok = chunk_tokens(&c, k, &w.spans, -1)
                if ntok < 0:
                    raise MemoryError()
                sp = <const int64_t*>w.spans.data
                out.append([PyUnicode_DecodeUTF8(<char*>c.data[k] + sp[2 * t],
                                                 sp[2 * t + 1] - sp[2 * t], NULL)
                            for t in range(ntok)])
    finally:
        chunk_free(&c)
        work_free(&w)
    return out


def _rank_keys(list keys, const int64_t[::1] counts, int depth):
    """The keys (bytes, distinct) ranked as the vocabulary ranks tokens: by descending
    count, then bytewise; ``depth == -1`` as fitting ranks (:func:`rank_table`),
    ``-2`` as it ranks counts beyond 32 bits (:func:`rank_table_wide`), else through the comparison
    sort alone with that many quicksort levels (0: heapsort). For the tests."""
    cdef Table t
    cdef Rank* r
    cdef int64_t n = len(keys), j, e
    cdef bytes b
    if counts.shape[0] != n:
        raise ValueError("one count per key")
    if table_init(&t) < 0:
        raise MemoryError()
    r = <Rank*>PyMem_RawMalloc(<size_t>(n if n > 0 else 1) * sizeof(Rank))
    order = np.zeros(n if n > 0 else 1, dtype=np.int64)
    ranked_counts = np.zeros(n if n > 0 else 1, dtype=np.int64)
    cdef int64_t[::1] o = order
    cdef int64_t[::1] oc = ranked_counts
    try:
        if r == NULL:
            raise MemoryError()
        for j in range(n):
            b = keys[j]
            e = table_add(&t, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b),
                          hash64(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b)), counts[j], False)
            if e < 0:
                raise MemoryError()
        if t.n != n:
            raise ValueError("keys must be distinct")
        if depth == -1 or depth == -2:
            if (rank_table(&t, -INT64_MAX, False, &o[0], &oc[0]) if depth == -1 else
                    rank_table_wide(&t, -INT64_MAX, False, &o[0], &oc[0])) != n:
                raise MemoryError()
            for j in range(n):
                r[j].slot = o[j]
        else:
            j = 0
            for e in range(t.mask + 1):
                if t.slots[e].hash != 0:
                    r[j].count = t.slots[e].value
                    r[j].prefix0 = key_prefix(<const uint8_t*>slot_key(&t, &t.slots[e]), t.slots[e].len)
                    r[j].prefix1 = (key_prefix(<const uint8_t*>slot_key(&t, &t.slots[e]) + 8,
                                               t.slots[e].len - 8) if t.slots[e].len > 8 else 0)
                    r[j].slot = e
                    j += 1
            sort_ranks(&t, r, n, depth)
        return [PyBytes_FromStringAndSize(<char*>slot_key(&t, &t.slots[r[j].slot]),
                                          t.slots[r[j].slot].len) for j in range(n)]
    finally:
        PyMem_RawFree(r)
        table_free(&t)
