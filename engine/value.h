/* value.h - run-time values: types, parsing (-p NAME=VALUE, step outputs), constraints,
 * comparison and text formatting.
 *
 * A value is a json_object: string, int (int64), double, boolean, array (list<T>) or object
 * (map<T>). An artifact at run time is an object {"artifact": DIGEST, "kind": "file"|"dir",
 * "type": TYPE}; a collected list of artifacts is an array of those. Which one a value is comes
 * from the IR's type and kind, never from the value's shape.
 *
 * Ownership: functions returning json_object * return a new reference owned by the caller
 * (json_object_put); arguments are borrowed. */
#ifndef KFPC_VALUE_H
#define KFPC_VALUE_H

#include <stddef.h>

#include <json-c/json.h>

struct ir_param;

/* Type kinds. */
enum vt_kind {
	VT_STRING,
	VT_INT,
	VT_FLOAT,
	VT_BOOL,
	VT_LIST,
	VT_MAP,
	VT_ARTIFACT,
};

/* Returns the kind of type string TYPE ("list<float>" is VT_LIST) or -1 when malformed.
 * When ELEM is non-NULL and the type is list/map, *ELEM points at the element type text and
 * *ELEMLEN is its length (not NUL-terminated). An identifier other than the value type names
 * is an artifact type. */
int value_type_kind(const char *type, const char **elem, size_t *elemlen);

/* 1 when TYPE is well-formed (recursively), 0 otherwise. */
int value_type_valid(const char *type);

/* 1 when V (a value, not an artifact) conforms to TYPE (an int conforms to float), else 0. */
int value_conforms(json_object *v, const char *type);

/* Parse TEXT (LEN bytes, not necessarily NUL-terminated) as a value of TYPE, as for `-p` and
 * value outputs (SPEC §4.5): string: the text (with TRIM_NL, one trailing newline removed);
 * int/float/bool: surrounding white space ignored; list/map: JSON, checked against the element
 * type. Returns a new value, or NULL with a message in err[errlen] ("expected int, got 'abc'"). */
json_object *value_parse(const char *text, size_t len, const char *type, int trim_nl, char *err,
			 size_t errlen);

/* Check V against parameter P's type and constraints (min/max, one_of, regex full match).
 * Returns 0, or -1 with a message in err ("value 0 is below the minimum 1"). */
int value_check_param(const struct ir_param *p, json_object *v, char *err, size_t errlen);

/* The text of V for interpolation: strings as is, numbers and bools as JSON, lists and maps as
 * compact JSON, null as "". Returns a malloc'd string or NULL when out of memory. */
char *value_to_text(json_object *v);

/* Compare A and B: numbers numerically (int/float mix), strings bytewise, bools (only equal or
 * not). Sets *cmp to <0, 0, >0. Returns 0, or -1 when they cannot be compared (different
 * kinds). */
int value_compare(json_object *a, json_object *b, int *cmp);

/* Deep equality of two values (numbers numerically). */
int value_equal(json_object *a, json_object *b);

/* A new double value that prints as the shortest text that reads back as D. */
json_object *value_new_double(double d);

/* Write the shortest round-trip text of D into buf[len] ("0.1", "1e+100", "2.0" for
 * integral values is written "2"). Returns buf. */
char *value_fmt_double(double d, char *buf, size_t len);

/* A new artifact value {"artifact": DIGEST, "kind": KIND, "type": TYPE}. */
json_object *value_new_artifact(const char *digest, const char *kind, const char *type);

/* The digest of artifact value V (borrowed) and its kind ("file"/"dir"), or NULL if V is not
 * an artifact value. */
const char *value_artifact_digest(json_object *v, const char **kind);

#endif
