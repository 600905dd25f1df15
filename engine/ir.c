/* ir.c - load and validate IR JSON (SPEC §9).
 *
 * Two passes over the json-c document:
 *   1. parse: every node, value, input and output into arena-allocated structs, checking each
 *      member's presence and JSON type, with a JSON path kept for messages ($.nodes[3].image);
 *   2. link: resolve references (deps, output/collect nodes, loop variables, parameters) with
 *      their visibility rules, hoist cross-body references into same-body data deps, build the
 *      reverse edges and check each body for cycles (a cyclic IR would never finish).
 * Errors stop at the first problem; the message is "IR PATH: what". */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/linkhash.h>

#include "ir.h"
#include "value.h"

/* ---- arena ----------------------------------------------------------------------------- */

struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct arena_block *head;
	pcre2_code **codes; /* compiled regexes to free */
	size_t ncodes, capcodes;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b = a->head;
	size_t al = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (!b || b->cap - b->used < al) {
		size_t cap = al > 65536 ? al : 65536;
		b = malloc(sizeof *b + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += al;
	memset(p, 0, n);
	return p;
}

static void arena_free(struct arena *a)
{
	struct arena_block *b, *n;

	if (!a)
		return;
	for (b = a->head; b; b = n) {
		n = b->next;
		free(b);
	}
	for (size_t i = 0; i < a->ncodes; i++)
		pcre2_code_free(a->codes[i]);
	free(a->codes);
	free(a);
}

/* ---- loader state ---------------------------------------------------------------------- */

struct loader {
	struct ir *ir;
	struct arena *ar;
	char *err;
	size_t errlen;
	int failed;
	char path[1024];
	size_t plen;
	struct ir_node **all; /* every node, for id lookup */
	size_t nall, capall;
	struct lh_table *ids; /* id -> index into all, plus one (the id strings are the IR's) */
};

static void fail(struct loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct loader *L, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (L->failed)
		return;
	L->failed = 1;
	n = snprintf(L->err, L->errlen, "IR $%s: ", L->path);
	if (n < 0 || (size_t)n >= L->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(L->err + n, L->errlen - n, fmt, ap);
	va_end(ap);
}

/* Path push/pop: returns the previous length to restore with pop. Every member access
 * pushes, so these copy bytes rather than format (a path that would not fit is not grown). */
static size_t push_key(struct loader *L, const char *key)
{
	size_t old = L->plen, n = strlen(key);

	if (n + 2 <= sizeof L->path - L->plen) {
		L->path[L->plen] = '.';
		memcpy(L->path + L->plen + 1, key, n + 1);
		L->plen += n + 1;
	}
	return old;
}

static size_t push_idx(struct loader *L, size_t i)
{
	char d[24];
	size_t old = L->plen, n = 0;

	do
		d[sizeof d - 1 - n++] = (char)('0' + i % 10);
	while ((i /= 10) && n < sizeof d);
	if (n + 3 <= sizeof L->path - L->plen) {
		L->path[L->plen] = '[';
		memcpy(L->path + L->plen + 1, d + sizeof d - n, n);
		L->path[L->plen + 1 + n] = ']';
		L->path[L->plen + 2 + n] = 0;
		L->plen += n + 2;
	}
	return old;
}

static void pop(struct loader *L, size_t old)
{
	L->plen = old;
	L->path[old] = 0;
}

static void *alloc(struct loader *L, size_t n)
{
	void *p = arena_alloc(L->ar, n ? n : 1);
	if (!p)
		fail(L, "out of memory");
	return p;
}

static void *alloc_array(struct loader *L, size_t n, size_t size)
{
	if (n && size > SIZE_MAX / n) {
		fail(L, "out of memory");
		return NULL;
	}
	return alloc(L, n * size);
}

static const char *type_name(json_type t)
{
	switch (t) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a number";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "?";
}

/* Member KEY of OBJ. REQUIRED: missing is an error. Returns NULL when missing or null. */
static json_object *member(struct loader *L, json_object *obj, const char *key, int required)
{
	json_object *v = NULL;

	if (L->failed)
		return NULL;
	if (!json_object_object_get_ex(obj, key, &v)) {
		if (required)
			fail(L, "missing member '%s'", key);
		return NULL;
	}
	return v;
}

/* Typed getters: the member must have the JSON type (NULLOK: null/missing allowed). */
static const char *get_str(struct loader *L, json_object *obj, const char *key, int nullok)
{
	json_object *v = member(L, obj, key, !nullok);
	size_t old;

	if (L->failed || (!v && nullok))
		return NULL;
	if (!v || !json_object_is_type(v, json_type_string)) {
		old = push_key(L, key);
		fail(L, "expected a string, got %s", type_name(json_object_get_type(v)));
		pop(L, old);
		return NULL;
	}
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		old = push_key(L, key);
		fail(L, "string contains a NUL byte");
		pop(L, old);
		return NULL;
	}
	return json_object_get_string(v);
}

static json_object *get_typed(struct loader *L, json_object *obj, const char *key, json_type t,
			      int required)
{
	json_object *v = member(L, obj, key, required);
	size_t old;

	if (L->failed || !v)
		return NULL;
	if (!json_object_is_type(v, t)) {
		old = push_key(L, key);
		fail(L, "expected %s, got %s", type_name(t), type_name(json_object_get_type(v)));
		pop(L, old);
		return NULL;
	}
	return v;
}

static int64_t get_int(struct loader *L, json_object *obj, const char *key, int required,
		       int64_t def, int64_t min, int64_t max)
{
	json_object *v = member(L, obj, key, required);
	int64_t x;
	size_t old;

	if (L->failed || !v)
		return def;
	old = push_key(L, key);
	if (!json_object_is_type(v, json_type_int)) {
		fail(L, "expected an integer, got %s", type_name(json_object_get_type(v)));
		pop(L, old);
		return def;
	}
	errno = 0;
	x = json_object_get_int64(v);
	if (x < min || x > max || errno == ERANGE)
		fail(L, "%lld is out of range (%lld..%lld)", (long long)x, (long long)min,
		     (long long)max);
	pop(L, old);
	return x;
}

static double get_num(struct loader *L, json_object *obj, const char *key, int required,
		      double def, double min, double max)
{
	json_object *v = member(L, obj, key, required);
	double x;
	size_t old;

	if (L->failed || !v)
		return def;
	old = push_key(L, key);
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
		fail(L, "expected a number, got %s", type_name(json_object_get_type(v)));
		pop(L, old);
		return def;
	}
	x = json_object_get_double(v);
	if (!(x >= min && x <= max))
		fail(L, "%g is out of range (%g..%g)", x, min, max);
	pop(L, old);
	return x;
}

static int get_bool(struct loader *L, json_object *obj, const char *key, int required, int def)
{
	json_object *v = get_typed(L, obj, key, json_type_boolean, required);
	return v ? json_object_get_boolean(v) : def;
}

static void get_loc(struct loader *L, json_object *obj, struct ir_loc *loc)
{
	json_object *l = member(L, obj, "loc", 0);
	size_t old;

	loc->file = "";
	if (L->failed || !l || json_object_is_type(l, json_type_null))
		return;
	old = push_key(L, "loc");
	if (!json_object_is_type(l, json_type_object)) {
		fail(L, "expected an object, got %s", type_name(json_object_get_type(l)));
	} else {
		const char *f = get_str(L, l, "file", 1);
		loc->file = f ? f : "";
		loc->line = (int)get_int(L, l, "line", 0, 0, 0, 1 << 30);
		loc->col = (int)get_int(L, l, "col", 0, 0, 0, 1 << 30);
	}
	pop(L, old);
}

/* Names used as file names (inputs, outputs, loop variables): identifiers only. */
static int is_ident(const char *s)
{
	if (!s || !*s || strlen(s) > 128)
		return 0;
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
		      (*s >= '0' && *s <= '9')))
			return 0;
	return 1;
}

/* Node ids: printable text without brackets (they are added for loop instances), spaces or a
 * leading/trailing/double '/' (sub-pipeline prefixes are joined with '/'). The compiler names
 * loops like "for.lr@34". */
static int is_node_id(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n > 150 || s[0] == '/' || s[n - 1] == '/' || strstr(s, "//"))
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f || c == '[' || c == ']' || c == ',' || c == '\\')
			return 0;
	}
	return 1;
}

/* ---- values ---------------------------------------------------------------------------- */

static const char *const op_names[] = {
	[IR_OP_EQ] = "==", [IR_OP_NE] = "!=", [IR_OP_LT] = "<", [IR_OP_LE] = "<=",
	[IR_OP_GT] = ">", [IR_OP_GE] = ">=", [IR_OP_AND] = "and", [IR_OP_OR] = "or",
	[IR_OP_NOT] = "not", [IR_OP_MATCHES] = "matches", [IR_OP_LEN] = "len",
};

const char *ir_op_name(enum ir_op op)
{
	return (size_t)op < sizeof op_names / sizeof op_names[0] ? op_names[op] : "?";
}

static pcre2_code *compile_re(struct loader *L, const char *pat, size_t len)
{
	int ec;
	PCRE2_SIZE off;
	pcre2_code *re;
	PCRE2_UCHAR msg[256];

	re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF, &ec, &off, NULL);
	if (!re) {
		pcre2_get_error_message(ec, msg, sizeof msg);
		fail(L, "invalid regular expression at offset %zu: %s", (size_t)off, (char *)msg);
		return NULL;
	}
	if (L->ar->ncodes == L->ar->capcodes) {
		size_t nc = L->ar->capcodes ? 2 * L->ar->capcodes : 8;
		pcre2_code **n = realloc(L->ar->codes, nc * sizeof *n);
		if (!n) {
			pcre2_code_free(re);
			fail(L, "out of memory");
			return NULL;
		}
		L->ar->codes = n;
		L->ar->capcodes = nc;
	}
	L->ar->codes[L->ar->ncodes++] = re;
	return re;
}

static struct ir_value *parse_value(struct loader *L, json_object *v, int expr, int loop_items);

static struct ir_value *parse_ref(struct loader *L, json_object *r, struct ir_value *val)
{
	if (!json_object_is_type(r, json_type_object)) {
		fail(L, "expected an object {\"node\", \"name\"}, got %s",
		     type_name(json_object_get_type(r)));
		return NULL;
	}
	val->name = get_str(L, r, "name", 0);
	/* "node" is kept as a string until link time */
	val->lo = 0;
	{
		const char *node = get_str(L, r, "node", 0);
		if (L->failed)
			return NULL;
		/* stash the node id in the value until linking */
		val->args = (struct ir_value **)(uintptr_t)node;
	}
	return L->failed ? NULL : val;
}

static struct ir_value *parse_value(struct loader *L, json_object *v, int expr, int loop_items)
{
	struct ir_value *val;
	json_object *x;
	size_t old, i, n;
	int nkeys;

	if (L->failed)
		return NULL;
	if (!v || !json_object_is_type(v, json_type_object)) {
		fail(L, "expected a value object, got %s", type_name(json_object_get_type(v)));
		return NULL;
	}
	val = alloc(L, sizeof *val);
	if (!val)
		return NULL;
	nkeys = json_object_object_length(v);
	if (expr && json_object_object_get_ex(v, "op", &x)) {
		const char *op;
		json_object *args;

		if (nkeys != 2) {
			fail(L, "an operator expression has exactly the members 'op' and 'args'");
			return NULL;
		}
		op = get_str(L, v, "op", 0);
		args = get_typed(L, v, "args", json_type_array, 1);
		if (L->failed)
			return NULL;
		val->kind = IR_V_OP;
		for (i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
			if (!strcmp(op, op_names[i]))
				break;
		if (i == sizeof op_names / sizeof op_names[0]) {
			old = push_key(L, "op");
			fail(L, "unknown operator '%s'", op);
			pop(L, old);
			return NULL;
		}
		val->op = (enum ir_op)i;
		n = json_object_array_length(args);
		if (((val->op == IR_OP_NOT || val->op == IR_OP_LEN) && n != 1) ||
		    (val->op != IR_OP_NOT && val->op != IR_OP_LEN && val->op != IR_OP_AND &&
		     val->op != IR_OP_OR && n != 2) ||
		    ((val->op == IR_OP_AND || val->op == IR_OP_OR) && n < 2)) {
			old = push_key(L, "args");
			fail(L, "operator '%s' takes %s, got %zu", op,
			     val->op == IR_OP_NOT || val->op == IR_OP_LEN ? "1 argument" :
			     val->op == IR_OP_AND || val->op == IR_OP_OR ? "2 or more arguments" :
									    "2 arguments", n);
			pop(L, old);
			return NULL;
		}
		val->args = alloc_array(L, n, sizeof *val->args);
		val->nargs = n;
		old = push_key(L, "args");
		for (i = 0; i < n && !L->failed; i++) {
			size_t o2 = push_idx(L, i);
			val->args[i] = parse_value(L, json_object_array_get_idx(args, i), 1, 0);
			pop(L, o2);
		}
		if (!L->failed && val->op == IR_OP_MATCHES) {
			struct ir_value *p = val->args[1];
			size_t o2 = push_idx(L, 1);
			if (p->kind != IR_V_CONST || !json_object_is_type(p->cst, json_type_string))
				fail(L, "the pattern of 'matches' must be a constant string");
			else
				val->re = compile_re(L, json_object_get_string(p->cst),
						     json_object_get_string_len(p->cst));
			pop(L, o2);
		}
		pop(L, old);
		return L->failed ? NULL : val;
	}
	if (nkeys != 1) {
		fail(L, "a value has exactly one member (const, param, var, output, collect, range "
			"or list), got %d", nkeys);
		return NULL;
	}
	if (json_object_object_get_ex(v, "const", &x)) {
		val->kind = IR_V_CONST;
		val->cst = x;
	} else if (json_object_object_get_ex(v, "param", &x)) {
		val->kind = IR_V_PARAM;
		val->name = get_str(L, v, "param", 0);
	} else if (json_object_object_get_ex(v, "var", &x)) {
		val->kind = IR_V_VAR;
		val->name = get_str(L, v, "var", 0);
	} else if (json_object_object_get_ex(v, "output", &x)) {
		val->kind = IR_V_OUTPUT;
		old = push_key(L, "output");
		parse_ref(L, x, val);
		pop(L, old);
	} else if (json_object_object_get_ex(v, "collect", &x)) {
		val->kind = IR_V_COLLECT;
		old = push_key(L, "collect");
		parse_ref(L, x, val);
		pop(L, old);
	} else if (json_object_object_get_ex(v, "range", &x)) {
		json_object *a, *b;
		val->kind = IR_V_RANGE;
		old = push_key(L, "range");
		if (!loop_items)
			fail(L, "a range is only allowed as loop items");
		else if (!json_object_is_type(x, json_type_array) || json_object_array_length(x) != 2)
			fail(L, "expected an array [FROM, TO]");
		else {
			a = json_object_array_get_idx(x, 0);
			b = json_object_array_get_idx(x, 1);
			if (!json_object_is_type(a, json_type_int) || !json_object_is_type(b, json_type_int))
				fail(L, "range bounds must be integers");
			else {
				val->lo = json_object_get_int64(a);
				val->hi = json_object_get_int64(b);
			}
		}
		pop(L, old);
	} else if (json_object_object_get_ex(v, "list", &x)) {
		val->kind = IR_V_LIST;
		old = push_key(L, "list");
		if (!json_object_is_type(x, json_type_array)) {
			fail(L, "expected an array, got %s", type_name(json_object_get_type(x)));
		} else {
			n = json_object_array_length(x);
			val->args = alloc_array(L, n, sizeof *val->args);
			val->nargs = n;
			for (i = 0; i < n && !L->failed; i++) {
				size_t o2 = push_idx(L, i);
				val->args[i] = parse_value(L, json_object_array_get_idx(x, i), expr, 0);
				pop(L, o2);
			}
		}
		pop(L, old);
	} else {
		json_object_object_foreach(v, key, unused) {
			(void)unused;
			fail(L, "unknown value kind '%s'", key);
			break;
		}
	}
	return L->failed ? NULL : val;
}

/* ---- nodes ----------------------------------------------------------------------------- */

static int parse_body(struct loader *L, json_object *arr, struct ir_body *body);

static void parse_ios(struct loader *L, json_object *node, const char *key, int outputs,
		      int with_value, struct ir_io **out, size_t *nout)
{
	json_object *arr = get_typed(L, node, key, json_type_array, 0);
	size_t n, i, j, old;

	*out = NULL;
	*nout = 0;
	if (!arr || L->failed)
		return;
	n = json_object_array_length(arr);
	*out = alloc_array(L, n, sizeof **out);
	if (!*out)
		return;
	*nout = n;
	old = push_key(L, key);
	for (i = 0; i < n && !L->failed; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		struct ir_io *io = &(*out)[i];
		const char *kind, *from;
		size_t o2 = push_idx(L, i);
		int tk;

		if (!json_object_is_type(o, json_type_object)) {
			fail(L, "expected an object, got %s", type_name(json_object_get_type(o)));
			pop(L, o2);
			break;
		}
		io->name = get_str(L, o, "name", 0);
		io->type = get_str(L, o, "type", 0);
		kind = get_str(L, o, "kind", 0);
		get_loc(L, o, &io->loc);
		if (L->failed) {
			pop(L, o2);
			break;
		}
		if (!is_ident(io->name)) {
			size_t o3 = push_key(L, "name");
			fail(L, "invalid name '%s' (an identifier is expected)", io->name);
			pop(L, o3);
		} else if (!value_type_valid(io->type)) {
			size_t o3 = push_key(L, "type");
			fail(L, "invalid type '%s'", io->type);
			pop(L, o3);
		} else if (strcmp(kind, "param") && strcmp(kind, "artifact")) {
			size_t o3 = push_key(L, "kind");
			fail(L, "kind must be \"param\" or \"artifact\", got '%s'", kind);
			pop(L, o3);
		}
		if (L->failed) {
			pop(L, o2);
			break;
		}
		io->artifact = !strcmp(kind, "artifact");
		tk = value_type_kind(io->type, NULL, NULL);
		if (!io->artifact && tk == VT_ARTIFACT) {
			fail(L, "type '%s' is an artifact type but kind is \"param\"", io->type);
		} else if (io->artifact && tk != VT_ARTIFACT && tk != VT_LIST) {
			fail(L, "type '%s' is a value type but kind is \"artifact\"", io->type);
		}
		for (j = 0; j < i && !L->failed; j++)
			if (!strcmp((*out)[j].name, io->name))
				fail(L, "duplicate name '%s'", io->name);
		if (with_value && !L->failed) {
			json_object *v = member(L, o, "value", 1);
			size_t o3 = push_key(L, "value");
			if (v)
				io->value = parse_value(L, v, 0, 0);
			pop(L, o3);
		}
		if (outputs && !with_value && !L->failed) {
			from = get_str(L, o, "from", 1);
			io->path = get_str(L, o, "path", 1);
			if (L->failed) {
				pop(L, o2);
				break;
			}
			if (!from || !strcmp(from, "path"))
				io->from = IR_FROM_PATH;
			else if (!strcmp(from, "file"))
				io->from = IR_FROM_FILE;
			else if (!strcmp(from, "stdout"))
				io->from = IR_FROM_STDOUT;
			else {
				size_t o3 = push_key(L, "from");
				fail(L, "unknown output source '%s' (file, stdout or path)", from);
				pop(L, o3);
			}
			if (!L->failed && io->artifact && io->from != IR_FROM_PATH)
				fail(L, "an artifact output is always read from its path");
			if (!L->failed && io->from == IR_FROM_FILE) {
				size_t o3 = push_key(L, "path");
				if (!io->path || !*io->path)
					fail(L, "'from file' needs a path");
				else if (io->path[0] == '/' || !strcmp(io->path, "..") ||
					 !strncmp(io->path, "../", 3) || strstr(io->path, "/../") ||
					 (strlen(io->path) >= 3 &&
					  !strcmp(io->path + strlen(io->path) - 3, "/..")))
					fail(L, "'%s' must be a relative path inside the working "
						"directory", io->path);
				pop(L, o3);
			}
		}
		pop(L, o2);
	}
	pop(L, old);
}

static void parse_str_array(struct loader *L, json_object *arr, const char ***out, size_t *n,
			    int nonempty)
{
	size_t i;

	*n = json_object_array_length(arr);
	if (nonempty && *n == 0) {
		fail(L, "must not be empty");
		return;
	}
	*out = alloc_array(L, *n, sizeof **out);
	for (i = 0; i < *n && !L->failed; i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		size_t old = push_idx(L, i);
		if (!json_object_is_type(s, json_type_string))
			fail(L, "expected a string, got %s", type_name(json_object_get_type(s)));
		else if (strlen(json_object_get_string(s)) != (size_t)json_object_get_string_len(s))
			fail(L, "string contains a NUL byte");
		else
			(*out)[i] = json_object_get_string(s);
		pop(L, old);
	}
}

static const char *const retry_kinds[] = {"error", "timeout", "oom", "infra"};

static void parse_step(struct loader *L, json_object *o, struct ir_node *n)
{
	json_object *cmd, *script, *env, *res, *retry, *cache, *pl, *vols, *x;
	size_t old, i, k;

	n->component = get_str(L, o, "component", 1);
	n->image = get_str(L, o, "image", 1);
	if (!n->image)
		n->image = "";
	cmd = member(L, o, "command", 0);
	script = member(L, o, "script", 0);
	if (L->failed)
		return;
	if (cmd && json_object_is_type(cmd, json_type_null))
		cmd = NULL;
	if (script && json_object_is_type(script, json_type_null))
		script = NULL;
	if (!!cmd == !!script) {
		fail(L, "a step needs exactly one of 'command' and 'script'");
		return;
	}
	if (cmd) {
		old = push_key(L, "command");
		if (!json_object_is_type(cmd, json_type_array))
			fail(L, "expected an array, got %s", type_name(json_object_get_type(cmd)));
		else
			parse_str_array(L, cmd, &n->command, &n->ncommand, 1);
		pop(L, old);
	} else {
		old = push_key(L, "script");
		if (!json_object_is_type(script, json_type_object)) {
			fail(L, "expected an object, got %s", type_name(json_object_get_type(script)));
		} else {
			x = get_typed(L, script, "interpreter", json_type_array, 1);
			n->script = get_str(L, script, "text", 0);
			if (x && !L->failed) {
				size_t o2 = push_key(L, "interpreter");
				parse_str_array(L, x, &n->interp, &n->ninterp, 1);
				pop(L, o2);
			}
		}
		pop(L, old);
	}
	env = get_typed(L, o, "env", json_type_array, 0);
	if (env && !L->failed) {
		old = push_key(L, "env");
		n->nenv = json_object_array_length(env);
		n->env = alloc_array(L, n->nenv, sizeof *n->env);
		for (i = 0; i < n->nenv && !L->failed; i++) {
			json_object *e = json_object_array_get_idx(env, i);
			size_t o2 = push_idx(L, i);
			if (!json_object_is_type(e, json_type_object)) {
				fail(L, "expected an object, got %s", type_name(json_object_get_type(e)));
			} else {
				n->env[i].name = get_str(L, e, "name", 0);
				n->env[i].value = get_str(L, e, "value", 1);
				n->env[i].secret = get_str(L, e, "secret", 1);
				if (!L->failed && (!n->env[i].name[0] || strchr(n->env[i].name, '=')))
					fail(L, "invalid environment variable name '%s'",
					     n->env[i].name);
				else if (!L->failed && !!n->env[i].value == !!n->env[i].secret)
					fail(L, "an env entry has exactly one of 'value' and 'secret'");
			}
			pop(L, o2);
		}
		pop(L, old);
	}
	n->workdir = get_str(L, o, "workdir", 1);
	res = get_typed(L, o, "resources", json_type_object, 0);
	if (res && !L->failed) {
		old = push_key(L, "resources");
		n->cpu_milli = get_int(L, res, "cpu_milli", 0, 0, 0, INT64_MAX / 2);
		n->memory_bytes = get_int(L, res, "memory_bytes", 0, 0, 0, INT64_MAX / 2);
		n->gpu = get_int(L, res, "gpu", 0, 0, 0, 1 << 20);
		pop(L, old);
	}
	n->retry_on = IR_RETRY_ERROR | IR_RETRY_TIMEOUT | IR_RETRY_OOM | IR_RETRY_INFRA;
	n->factor = 1;
	retry = get_typed(L, o, "retry", json_type_object, 0);
	if (retry && !L->failed) {
		old = push_key(L, "retry");
		n->retry_limit = (int)get_int(L, retry, "limit", 0, 0, 0, 1000);
		n->backoff = get_num(L, retry, "backoff", 0, 0, 0, 1e9);
		n->factor = get_num(L, retry, "factor", 0, 1, 0, 1e6);
		n->max_backoff = get_num(L, retry, "max_backoff", 0, 0, 0, 1e9);
		x = get_typed(L, retry, "on", json_type_array, 0);
		if (x && !L->failed) {
			size_t o2 = push_key(L, "on");
			n->retry_on = 0;
			for (i = 0; i < json_object_array_length(x) && !L->failed; i++) {
				json_object *s = json_object_array_get_idx(x, i);
				size_t o3 = push_idx(L, i);
				for (k = 0; k < 4; k++)
					if (json_object_is_type(s, json_type_string) &&
					    !strcmp(json_object_get_string(s), retry_kinds[k]))
						break;
				if (k == 4)
					fail(L, "unknown failure kind (error, timeout, oom, infra)");
				else
					n->retry_on |= 1u << k;
				pop(L, o3);
			}
			pop(L, o2);
		}
		pop(L, old);
	}
	n->timeout = get_num(L, o, "timeout", 0, 0, 0, 1e9);
	n->cache = 1;
	cache = get_typed(L, o, "cache", json_type_object, 0);
	if (cache && !L->failed) {
		old = push_key(L, "cache");
		n->cache = get_bool(L, cache, "enabled", 0, 1);
		n->max_age = get_num(L, cache, "max_age", 0, 0, 0, 1e12);
		pop(L, old);
	}
	pl = get_typed(L, o, "placement", json_type_object, 0);
	if (pl && !L->failed) {
		old = push_key(L, "placement");
		x = get_typed(L, pl, "labels", json_type_object, 0);
		if (x && !L->failed) {
			size_t o2 = push_key(L, "labels");
			n->nlabels = json_object_object_length(x);
			n->labels = alloc_array(L, n->nlabels, sizeof *n->labels);
			i = 0;
			json_object_object_foreach(x, key, val) {
				if (L->failed)
					break;
				if (!json_object_is_type(val, json_type_string)) {
					fail(L, "label '%s' must be a string", key);
					break;
				}
				n->labels[i].key = key;
				n->labels[i].value = json_object_get_string(val);
				i++;
			}
			pop(L, o2);
		}
		pop(L, old);
	}
	vols = get_typed(L, o, "volumes", json_type_array, 0);
	if (vols && !L->failed) {
		old = push_key(L, "volumes");
		n->nvolumes = json_object_array_length(vols);
		n->volumes = alloc_array(L, n->nvolumes, sizeof *n->volumes);
		for (i = 0; i < n->nvolumes && !L->failed; i++) {
			json_object *v = json_object_array_get_idx(vols, i);
			size_t o2 = push_idx(L, i);
			if (!json_object_is_type(v, json_type_object)) {
				fail(L, "expected an object");
			} else {
				n->volumes[i].name = get_str(L, v, "name", 0);
				n->volumes[i].mount = get_str(L, v, "mount", 0);
				n->volumes[i].readonly = get_bool(L, v, "readonly", 0, 0);
			}
			pop(L, o2);
		}
		pop(L, old);
	}
	parse_ios(L, o, "inputs", 0, 1, &n->inputs, &n->ninputs);
	parse_ios(L, o, "outputs", 1, 0, &n->outputs, &n->noutputs);
}

static int add_node(struct loader *L, struct ir_node *n)
{
	if (lh_table_lookup_entry(L->ids, n->id)) {
		size_t old = push_key(L, "id");
		fail(L, "duplicate node id '%s'", n->id);
		pop(L, old);
		return -1;
	}
	if (L->nall == L->capall) {
		size_t nc = L->capall ? 2 * L->capall : 64;
		struct ir_node **a = realloc(L->all, nc * sizeof *a);
		if (!a) {
			fail(L, "out of memory");
			return -1;
		}
		L->all = a;
		L->capall = nc;
	}
	if (lh_table_insert(L->ids, n->id, (void *)(uintptr_t)(L->nall + 1))) {
		fail(L, "out of memory");
		return -1;
	}
	L->all[L->nall++] = n;
	return 0;
}

static struct ir_node *parse_node(struct loader *L, json_object *o, struct ir_body *in,
				  size_t index)
{
	struct ir_node *n;
	const char *kind;
	json_object *x;
	size_t old;

	if (!json_object_is_type(o, json_type_object)) {
		fail(L, "expected a node object, got %s", type_name(json_object_get_type(o)));
		return NULL;
	}
	n = alloc(L, sizeof *n);
	if (!n)
		return NULL;
	n->json = o;
	n->in = in;
	n->index = index;
	n->id = get_str(L, o, "id", 0);
	kind = get_str(L, o, "kind", 0);
	get_loc(L, o, &n->loc);
	if (L->failed)
		return NULL;
	if (!is_node_id(n->id)) {
		old = push_key(L, "id");
		fail(L, "invalid node id '%s'", n->id);
		pop(L, old);
		return NULL;
	}
	if (add_node(L, n) < 0)
		return NULL;
	x = get_typed(L, o, "deps", json_type_array, 0);
	if (x && !L->failed) {
		/* checked and resolved at link time */
		size_t i;
		old = push_key(L, "deps");
		for (i = 0; i < json_object_array_length(x) && !L->failed; i++) {
			size_t o2 = push_idx(L, i);
			if (!json_object_is_type(json_object_array_get_idx(x, i), json_type_string))
				fail(L, "expected a node id string");
			pop(L, o2);
		}
		pop(L, old);
	}
	x = member(L, o, "when", 0);
	if (x && !json_object_is_type(x, json_type_null) && !L->failed) {
		old = push_key(L, "when");
		n->when = parse_value(L, x, 1, 0);
		pop(L, old);
	}
	if (L->failed)
		return NULL;
	if (!strcmp(kind, "step")) {
		n->kind = IR_STEP;
		parse_step(L, o, n);
	} else if (!strcmp(kind, "loop")) {
		n->kind = IR_LOOP;
		n->var = get_str(L, o, "var", 0);
		if (!L->failed && !is_ident(n->var)) {
			old = push_key(L, "var");
			fail(L, "invalid loop variable name '%s'", n->var);
			pop(L, old);
		}
		x = member(L, o, "items", 1);
		if (x && !L->failed) {
			old = push_key(L, "items");
			n->items = parse_value(L, x, 0, 1);
			pop(L, old);
		}
		n->parallel = (int)get_int(L, o, "parallelism", 0, 0, 0, 1 << 30);
		x = get_typed(L, o, "body", json_type_array, 1);
		n->body.owner = n;
		n->body.parent = in;
		if (x && !L->failed) {
			old = push_key(L, "body");
			parse_body(L, x, &n->body);
			pop(L, old);
		}
	} else if (!strcmp(kind, "pipeline")) {
		n->kind = IR_PIPELINE;
		n->pipeline = get_str(L, o, "pipeline", 0);
		parse_ios(L, o, "inputs", 0, 1, &n->inputs, &n->ninputs);
		n->body.owner = n;
		n->body.parent = in;
		n->fin.owner = n;
		n->fin.parent = in;
		n->fin.is_finally = 1;
		x = get_typed(L, o, "body", json_type_array, 1);
		if (x && !L->failed) {
			old = push_key(L, "body");
			parse_body(L, x, &n->body);
			pop(L, old);
		}
		x = get_typed(L, o, "finally", json_type_array, 0);
		if (x && !L->failed) {
			old = push_key(L, "finally");
			parse_body(L, x, &n->fin);
			pop(L, old);
		}
		parse_ios(L, o, "outputs", 1, 1, &n->outputs, &n->noutputs);
	} else {
		old = push_key(L, "kind");
		fail(L, "unknown node kind '%s' (step, loop or pipeline)", kind);
		pop(L, old);
	}
	return L->failed ? NULL : n;
}

static int parse_body(struct loader *L, json_object *arr, struct ir_body *body)
{
	size_t i, n = json_object_array_length(arr);

	body->n = n;
	body->nodes = alloc_array(L, n, sizeof *body->nodes);
	for (i = 0; i < n && !L->failed; i++) {
		size_t old = push_idx(L, i);
		body->nodes[i] = parse_node(L, json_object_array_get_idx(arr, i), body, i);
		if (body->is_finally && body->nodes[i] && body->nodes[i]->kind != IR_STEP)
			fail(L, "a finally node must be a step");
		pop(L, old);
	}
	return L->failed ? -1 : 0;
}

/* ---- linking --------------------------------------------------------------------------- */

/* Is body A equal to B or an ancestor of B (through loops only when LOOPS_ONLY... no:
 * through any owner)? */
static int body_encloses(const struct ir_body *a, const struct ir_body *b)
{
	for (; b; b = b->parent)
		if (a == b)
			return 1;
	return 0;
}

/* The ancestor-or-self of N that lives in body B, or NULL. */
static struct ir_node *ancestor_in(struct ir_node *n, const struct ir_body *b)
{
	while (n && n->in != b)
		n = n->in->owner;
	return n;
}

struct depset {
	size_t *idx;
	unsigned char *data;
	size_t n, cap;
};

static int dep_add(struct loader *L, struct depset *d, size_t idx, int data)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->idx[i] == idx) {
			d->data[i] |= (unsigned char)data;
			return 0;
		}
	if (d->n == d->cap) {
		size_t nc = d->cap ? 2 * d->cap : 8;
		size_t *ni = realloc(d->idx, nc * sizeof *ni);
		unsigned char *nd;
		if (!ni) {
			fail(L, "out of memory");
			return -1;
		}
		d->idx = ni;
		nd = realloc(d->data, nc);
		if (!nd) {
			fail(L, "out of memory");
			return -1;
		}
		d->data = nd;
		d->cap = nc;
	}
	d->idx[d->n] = idx;
	d->data[d->n] = (unsigned char)data;
	d->n++;
	return 0;
}

/* Per-node dependency sets while linking (indexed like L->all). */
struct linkctx {
	struct depset *sets;
};

static struct ir_node *find_node(struct loader *L, const char *id)
{
	struct lh_entry *e = lh_table_lookup_entry(L->ids, id);

	return e ? L->all[(uintptr_t)lh_entry_v(e) - 1] : NULL;
}

static size_t node_slot(struct loader *L, struct ir_node *n)
{
	struct lh_entry *e = lh_table_lookup_entry(L->ids, n->id);

	return e ? (uintptr_t)lh_entry_v(e) - 1 : 0;
}

/* Resolve value V evaluated in body CTX on behalf of node CONSUMER (NULL: pipeline outputs,
 * no dependency needed). */
static void link_value(struct loader *L, struct linkctx *C, struct ir_value *v,
		       struct ir_body *ctx, struct ir_node *consumer)
{
	struct ir_body *b;
	size_t i;

	if (!v || L->failed)
		return;
	v->owner = consumer;
	switch (v->kind) {
	case IR_V_CONST:
	case IR_V_RANGE:
		return;
	case IR_V_LIST:
	case IR_V_OP:
		for (i = 0; i < v->nargs && !L->failed; i++)
			link_value(L, C, v->args[i], ctx, consumer);
		return;
	case IR_V_PARAM:
		for (b = ctx; b; b = b->parent) {
			if (!b->owner) {
				if (!ir_param_find(L->ir, v->name))
					fail(L, "unknown parameter '%s'", v->name);
				return;
			}
			if (b->owner->kind == IR_PIPELINE) {
				for (i = 0; i < b->owner->ninputs; i++)
					if (!strcmp(b->owner->inputs[i].name, v->name))
						return;
				fail(L, "sub-pipeline '%s' has no parameter '%s'", b->owner->id,
				     v->name);
				return;
			}
		}
		return;
	case IR_V_VAR:
		for (b = ctx; b && b->owner; b = b->parent) {
			if (b->owner->kind == IR_PIPELINE)
				break;
			if (b->owner->kind == IR_LOOP && !strcmp(b->owner->var, v->name)) {
				v->loop = b->owner;
				return;
			}
		}
		fail(L, "unknown loop variable '%s'", v->name);
		return;
	case IR_V_OUTPUT:
	case IR_V_COLLECT: {
		const char *id = (const char *)(uintptr_t)v->args;
		struct ir_node *t, *x, *y;

		v->args = NULL;
		t = find_node(L, id);
		if (!t) {
			fail(L, "unknown node '%s'", id);
			return;
		}
		v->node = t;
		if (t->kind == IR_LOOP) {
			fail(L, "node '%s' is a loop and has no outputs", id);
			return;
		}
		if (!ir_node_output(t, v->name)) {
			fail(L, "node '%s' has no output '%s'", id, v->name);
			return;
		}
		if (v->kind == IR_V_OUTPUT) {
			if (!body_encloses(t->in, ctx)) {
				fail(L, "node '%s' is not visible here (not in this body or an "
					"enclosing one)", id);
				return;
			}
			b = t->in;
		} else {
			int crossed = 0;
			for (b = t->in; b && !body_encloses(b, ctx); b = b->parent) {
				if (!b->owner || b->owner->kind != IR_LOOP) {
					fail(L, "collect of '%s' does not cross only loops", id);
					return;
				}
				crossed++;
			}
			if (!b || !crossed) {
				fail(L, "collect of '%s': the node is not inside a loop relative "
					"to this reference", id);
				return;
			}
		}
		if (!consumer)
			return;
		x = ancestor_in(t, b);
		y = ancestor_in(consumer, b);
		if (!x || !y || x == y)
			return;
		dep_add(L, &C->sets[node_slot(L, y)], x->index, 1);
		return;
	}
	}
}

static void link_body(struct loader *L, struct linkctx *C, struct ir_body *body);

static void link_node(struct loader *L, struct linkctx *C, struct ir_node *n)
{
	json_object *deps;
	size_t i, old, slot = node_slot(L, n);

	deps = member(L, n->json, "deps", 0);
	if (deps && json_object_is_type(deps, json_type_array)) {
		old = push_key(L, "deps");
		for (i = 0; i < json_object_array_length(deps) && !L->failed; i++) {
			const char *id = json_object_get_string(json_object_array_get_idx(deps, i));
			struct ir_node *d = find_node(L, id);
			size_t o2 = push_idx(L, i);
			if (!d)
				fail(L, "unknown node '%s'", id);
			else if (d == n)
				fail(L, "node '%s' depends on itself", id);
			else if (d->in != n->in)
				fail(L, "dependency '%s' is not in the same body", id);
			else
				dep_add(L, &C->sets[slot], d->index, 0);
			pop(L, o2);
		}
		pop(L, old);
	}
	if (n->when) {
		old = push_key(L, "when");
		link_value(L, C, n->when, n->in, n);
		pop(L, old);
	}
	old = push_key(L, "inputs");
	for (i = 0; i < n->ninputs && !L->failed; i++) {
		size_t o2 = push_idx(L, i), o3 = push_key(L, "value");
		link_value(L, C, n->inputs[i].value, n->in, n);
		pop(L, o3);
		pop(L, o2);
	}
	pop(L, old);
	if (n->kind == IR_LOOP) {
		old = push_key(L, "items");
		link_value(L, C, n->items, n->in, n);
		pop(L, old);
		old = push_key(L, "body");
		link_body(L, C, &n->body);
		pop(L, old);
	} else if (n->kind == IR_PIPELINE) {
		old = push_key(L, "body");
		link_body(L, C, &n->body);
		pop(L, old);
		old = push_key(L, "finally");
		link_body(L, C, &n->fin);
		pop(L, old);
		old = push_key(L, "outputs");
		for (i = 0; i < n->noutputs && !L->failed; i++) {
			size_t o2 = push_idx(L, i), o3 = push_key(L, "value");
			link_value(L, C, n->outputs[i].value, &n->body, NULL);
			pop(L, o3);
			pop(L, o2);
		}
		pop(L, old);
	}
}

static void link_body(struct loader *L, struct linkctx *C, struct ir_body *body)
{
	for (size_t i = 0; i < body->n && !L->failed; i++) {
		size_t old = push_idx(L, i);
		link_node(L, C, body->nodes[i]);
		pop(L, old);
	}
}

/* Copy dependency sets into the nodes, build reverse edges, and check for cycles. */
static void finish_body(struct loader *L, struct linkctx *C, struct ir_body *body)
{
	size_t i, j, *count = NULL, *queue = NULL, head = 0, tail = 0, done = 0;

	for (i = 0; i < body->n && !L->failed; i++) {
		struct ir_node *n = body->nodes[i];
		struct depset *d = &C->sets[node_slot(L, n)];
		n->ndeps = d->n;
		n->deps = alloc_array(L, d->n, sizeof *n->deps);
		n->dep_data = alloc(L, d->n);
		if (L->failed)
			return;
		if (d->n) {
			memcpy(n->deps, d->idx, d->n * sizeof *n->deps);
			memcpy(n->dep_data, d->data, d->n);
		}
		for (j = 0; j < d->n; j++)
			body->nodes[d->idx[j]]->nusers++;
	}
	for (i = 0; i < body->n && !L->failed; i++) {
		struct ir_node *n = body->nodes[i];
		n->users = alloc_array(L, n->nusers, sizeof *n->users);
		n->nusers = 0;
	}
	for (i = 0; i < body->n && !L->failed; i++) {
		struct ir_node *n = body->nodes[i];
		for (j = 0; j < n->ndeps; j++) {
			struct ir_node *d = body->nodes[n->deps[j]];
			d->users[d->nusers++] = i;
		}
	}
	if (L->failed)
		return;
	/* Kahn's algorithm */
	count = calloc(body->n ? body->n : 1, sizeof *count);
	queue = calloc(body->n ? body->n : 1, sizeof *queue);
	if (!count || !queue) {
		fail(L, "out of memory");
		goto out;
	}
	for (i = 0; i < body->n; i++) {
		count[i] = body->nodes[i]->ndeps;
		if (!count[i])
			queue[tail++] = i;
	}
	while (head < tail) {
		struct ir_node *n = body->nodes[queue[head++]];
		done++;
		for (j = 0; j < n->nusers; j++)
			if (--count[n->users[j]] == 0)
				queue[tail++] = n->users[j];
	}
	if (done != body->n) {
		for (i = 0; i < body->n; i++)
			if (count[i])
				break;
		fail(L, "dependency cycle involving node '%s'", body->nodes[i]->id);
	}
	for (i = 0; i < body->n && !L->failed; i++) {
		struct ir_node *n = body->nodes[i];
		if (n->kind == IR_LOOP || n->kind == IR_PIPELINE)
			finish_body(L, C, &n->body);
		if (n->kind == IR_PIPELINE)
			finish_body(L, C, &n->fin);
	}
out:
	free(count);
	free(queue);
}

/* ---- top level ------------------------------------------------------------------------- */

static void parse_params(struct loader *L, json_object *arr)
{
	size_t i, j, old = push_key(L, "params");

	L->ir->nparams = json_object_array_length(arr);
	L->ir->params = alloc_array(L, L->ir->nparams, sizeof *L->ir->params);
	for (i = 0; i < L->ir->nparams && !L->failed; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *c, *x;
		struct ir_param *p = &L->ir->params[i];
		size_t o2 = push_idx(L, i);

		if (!json_object_is_type(o, json_type_object)) {
			fail(L, "expected an object, got %s", type_name(json_object_get_type(o)));
			pop(L, o2);
			break;
		}
		p->name = get_str(L, o, "name", 0);
		p->type = get_str(L, o, "type", 0);
		p->doc = get_str(L, o, "doc", 1);
		p->required = get_bool(L, o, "required", 0, 0);
		get_loc(L, o, &p->loc);
		x = member(L, o, "default", 0);
		p->def = x && !json_object_is_type(x, json_type_null) ? x : NULL;
		if (L->failed) {
			pop(L, o2);
			break;
		}
		if (!is_ident(p->name))
			fail(L, "invalid parameter name '%s'", p->name);
		else if (!value_type_valid(p->type) ||
			 value_type_kind(p->type, NULL, NULL) == VT_ARTIFACT)
			fail(L, "invalid parameter type '%s'", p->type);
		for (j = 0; j < i && !L->failed; j++)
			if (!strcmp(L->ir->params[j].name, p->name))
				fail(L, "duplicate parameter '%s'", p->name);
		if (!p->def && !p->required && !L->failed)
			p->required = 1; /* no default: required at run time (SPEC §4.3) */
		if (p->def && !L->failed && !value_conforms(p->def, p->type)) {
			size_t o3 = push_key(L, "default");
			fail(L, "default does not have type %s", p->type);
			pop(L, o3);
		}
		c = get_typed(L, o, "constraints", json_type_object, 0);
		if (c && !L->failed) {
			size_t o3 = push_key(L, "constraints");
			p->min = member(L, c, "min", 0);
			p->max = member(L, c, "max", 0);
			if (p->min && json_object_is_type(p->min, json_type_null))
				p->min = NULL;
			if (p->max && json_object_is_type(p->max, json_type_null))
				p->max = NULL;
			if ((p->min && !json_object_is_type(p->min, json_type_int) &&
			     !json_object_is_type(p->min, json_type_double)) ||
			    (p->max && !json_object_is_type(p->max, json_type_int) &&
			     !json_object_is_type(p->max, json_type_double)))
				fail(L, "min and max must be numbers");
			p->one_of = get_typed(L, c, "one_of", json_type_array, 0);
			p->regex = get_str(L, c, "regex", 1);
			if (p->regex && !L->failed) {
				size_t o4 = push_key(L, "regex");
				p->re = compile_re(L, p->regex, strlen(p->regex));
				pop(L, o4);
			}
			pop(L, o3);
		}
		pop(L, o2);
	}
	pop(L, old);
}

struct ir *ir_load(const char *text, size_t len, char *err, size_t errlen)
{
	struct loader L = {0};
	struct json_tokener *tok;
	json_object *root = NULL, *x;
	struct ir *ir = NULL;
	struct linkctx C = {0};
	size_t i, old;

	L.err = err;
	L.errlen = errlen;
	if (errlen)
		err[0] = 0;
	tok = json_tokener_new_ex(64);
	if (!tok) {
		snprintf(err, errlen, "IR: out of memory");
		return NULL;
	}
	if (len > INT32_MAX) {
		snprintf(err, errlen, "IR: document too large");
		json_tokener_free(tok);
		return NULL;
	}
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) < len) {
		size_t end = json_tokener_get_parse_end(tok);
		int only_ws = 1;
		if (root && json_tokener_get_error(tok) == json_tokener_success) {
			for (i = end; i < len; i++)
				if (text[i] != ' ' && text[i] != '\n' && text[i] != '\t' &&
				    text[i] != '\r')
					only_ws = 0;
		} else {
			only_ws = 0;
		}
		if (!only_ws) {
			enum json_tokener_error e = json_tokener_get_error(tok);
			snprintf(err, errlen, "IR: not valid JSON at byte %zu: %s", end,
				 root ? "trailing data after the document"
				 : e == json_tokener_continue ? "unexpected end of input"
							     : json_tokener_error_desc(e));
			json_object_put(root);
			json_tokener_free(tok);
			return NULL;
		}
	}
	json_tokener_free(tok);
	if (!json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "IR $: expected an object, got %s",
			 type_name(json_object_get_type(root)));
		json_object_put(root);
		return NULL;
	}
	ir = calloc(1, sizeof *ir);
	L.ar = calloc(1, sizeof *L.ar);
	L.ids = lh_kchar_table_new(1024, NULL);
	if (ir) {
		ir->root = root;
		ir->arena = L.ar;
	} else {
		arena_free(L.ar);
		L.ar = NULL;
	}
	if (!ir || !L.ar || !L.ids) {
		snprintf(err, errlen, "IR: out of memory");
		goto fail;
	}
	L.ir = ir;

	/* the version first, so that an unknown version is reported as such */
	if (!json_object_object_get_ex(root, "kfpc_ir", &x)) {
		fail(&L, "missing member 'kfpc_ir' (not a kfpc IR document?)");
		goto fail;
	}
	if (!json_object_is_type(x, json_type_int)) {
		old = push_key(&L, "kfpc_ir");
		fail(&L, "expected an integer version, got %s", type_name(json_object_get_type(x)));
		goto fail;
	}
	ir->version = (int)json_object_get_int64(x);
	if (json_object_get_int64(x) != IR_VERSION) {
		old = push_key(&L, "kfpc_ir");
		fail(&L, "unsupported IR version %lld (this kfpc understands version %d)",
		     (long long)json_object_get_int64(x), IR_VERSION);
		goto fail;
	}
	ir->name = get_str(&L, root, "name", 0);
	ir->doc = get_str(&L, root, "doc", 1);
	get_loc(&L, root, &ir->loc);
	ir->parallelism = (int)get_int(&L, root, "parallelism", 0, 0, 0, 1 << 30);
	ir->timeout = get_num(&L, root, "timeout", 0, 0, 0, 1e12);
	if (L.failed)
		goto fail;
	if (!is_ident(ir->name)) {
		old = push_key(&L, "name");
		fail(&L, "invalid pipeline name '%s'", ir->name);
		goto fail;
	}
	x = get_typed(&L, root, "params", json_type_array, 0);
	if (x)
		parse_params(&L, x);
	x = get_typed(&L, root, "schedules", json_type_array, 0);
	x = get_typed(&L, root, "types", json_type_array, 0);
	x = get_typed(&L, root, "nodes", json_type_array, 1);
	if (x && !L.failed) {
		old = push_key(&L, "nodes");
		parse_body(&L, x, &ir->body);
		pop(&L, old);
	}
	ir->fin.is_finally = 1;
	x = get_typed(&L, root, "finally", json_type_array, 0);
	if (x && !L.failed) {
		old = push_key(&L, "finally");
		parse_body(&L, x, &ir->fin);
		pop(&L, old);
	}
	parse_ios(&L, root, "outputs", 1, 1, &ir->outputs, &ir->noutputs);
	if (L.failed)
		goto fail;
	ir->nnodes = L.nall;

	/* link */
	C.sets = calloc(L.nall ? L.nall : 1, sizeof *C.sets);
	if (!C.sets) {
		fail(&L, "out of memory");
		goto fail;
	}
	old = push_key(&L, "nodes");
	link_body(&L, &C, &ir->body);
	pop(&L, old);
	old = push_key(&L, "finally");
	link_body(&L, &C, &ir->fin);
	pop(&L, old);
	old = push_key(&L, "outputs");
	for (i = 0; i < ir->noutputs && !L.failed; i++) {
		size_t o2 = push_idx(&L, i), o3 = push_key(&L, "value");
		link_value(&L, &C, ir->outputs[i].value, &ir->body, NULL);
		pop(&L, o3);
		pop(&L, o2);
	}
	pop(&L, old);
	if (L.failed)
		goto fail;
	old = push_key(&L, "nodes");
	finish_body(&L, &C, &ir->body);
	pop(&L, old);
	old = push_key(&L, "finally");
	finish_body(&L, &C, &ir->fin);
	pop(&L, old);
	if (L.failed)
		goto fail;
	for (i = 0; i < L.nall; i++) {
		free(C.sets[i].idx);
		free(C.sets[i].data);
	}
	free(C.sets);
	free(L.all);
	if (L.ids)
		lh_table_free(L.ids);
	return ir;
fail:
	if (C.sets) {
		for (i = 0; i < L.nall; i++) {
			free(C.sets[i].idx);
			free(C.sets[i].data);
		}
		free(C.sets);
	}
	free(L.all);
	if (L.ids)
		lh_table_free(L.ids);
	if (ir)
		ir_free(ir);
	else
		json_object_put(root);
	return NULL;
}

void ir_free(struct ir *ir)
{
	if (!ir)
		return;
	arena_free(ir->arena);
	json_object_put(ir->root);
	free(ir);
}

const struct ir_param *ir_param_find(const struct ir *ir, const char *name)
{
	for (size_t i = 0; i < ir->nparams; i++)
		if (ir->params[i].name && !strcmp(ir->params[i].name, name))
			return &ir->params[i];
	return NULL;
}

char *ir_loc_str(const struct ir_loc *loc, char *buf, size_t len)
{
	if (!loc->file || !*loc->file)
		snprintf(buf, len, "?");
	else if (loc->line <= 0)
		snprintf(buf, len, "%s", loc->file);
	else
		snprintf(buf, len, "%s:%d:%d", loc->file, loc->line, loc->col);
	return buf;
}

const struct ir_io *ir_node_output(const struct ir_node *node, const char *name)
{
	for (size_t i = 0; i < node->noutputs; i++)
		if (!strcmp(node->outputs[i].name, name))
			return &node->outputs[i];
	return NULL;
}
