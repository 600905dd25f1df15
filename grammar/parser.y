/* parser.y - the kfp grammar (SPEC §2) building the tree of ast.h.
 *
 * A pure bison parser (api.pure full, LAC, custom error messages) over the reentrant flex scanner
 * of lexer.l. All state is in struct parse_ctx, passed as %param; there are no globals.
 *
 * Token stream: yylex() below wraps the flex scanner and implements SPEC §1's statement ends: a ';'
 * is inserted before a token that follows a newline when the previous token was a name, a literal,
 * ')', ']' or '}', unless the innermost open bracket is '(' or '[' or the token is 'else'; and
 * before the end of the file. It also tracks bracket nesting (PARSE_MAX_NESTING); closes brackets
 * left open when a bracket closes an outer one (`[1, 2 }` reads as `[1, 2] }`, one E001); and,
 * while the parser recovers from a syntax error, skips whole bracketed groups, so that recovery
 * resumes at the next statement end, '}' or ')' of the construct that failed, not of a nested one.
 *
 * Properties: `IDENT parg*` reads greedily, so `timeout 5m retry 3` on one line is first read as
 * one property; push_props() then splits it before every bare name argument that is a known
 * property name (props[] below) unless a ',' preceded it (SPEC §2).
 *
 * Memory: every value is allocated in the ast arena (no %destructor needed: nothing is heap
 * owned by the parser stack). Out of memory longjmps to parse_text(), which returns NULL.
 *
 * Two parsers: the build generates this grammar twice, once as written (LAC, whose expected-token
 * sets the syntax error messages list) and once with parse.lac=none and KFP_PARSE_FAST defined
 * (CMakeLists.txt), whose yyparse is kfp_parse_fast(). A file is parsed with the fast one first;
 * only when that reports a syntax error (or runs out of parser stack) are its diagnostics rolled
 * back (diag_rollback) and the file parsed again with the LAC parser, so every message is the LAC
 * parser's. Without a syntax error both parsers perform the same actions on the same tokens. */

%code top {
#ifdef KFP_PARSE_FAST
/* the LAC-less copy of this parser: its own names for what the LAC copy exports */
#define yyparse kfp_parse_fast
#define parse_loc kfp_fast_parse_loc
#define parse_span kfp_fast_parse_span
#define parse_alloc kfp_fast_parse_alloc
#define parse_strndup kfp_fast_parse_strndup
#define parse_intern kfp_fast_parse_intern
#endif
}

%code requires {
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "ast.h"
#include "diag.h"
#include "parse.h"

struct parse_ctx;

/* A token's value: text and decoded literal, and the doc comment written before it. Kept at 32
 * bytes (the parser copies values on every shift and reduction); lengths fit in 32 bits because
 * a parsed file is shorter than 2^31 bytes (a raw string's template at most doubles that). */
struct tok {
	const char *s;      /* IDENT text; STRING/RAWSTRING decoded value; DURATION text */
	const char *doc;    /* `///` text before this token, or NULL */
	union {
		const char *tmpl; /* STRING/RAWSTRING: interpolation template (ast.h) */
		int64_t i;        /* INT value; DURATION milliseconds */
		double f;         /* FLOAT value */
	};
	uint32_t len;       /* of s */
	uint32_t tmpl_len;  /* STRING/RAWSTRING: of tmpl */
};

/* A growable array of pointers in the arena. */
struct vec {
	void **v;
	int n, cap;
};

/* A growable array of names in the arena (the parts of a.b.c, used as the tree's array). */
struct names {
	struct ast_name *v;
	int n, cap;
};
}

%code provides {
/* The state of one parse: scanner, token-stream wrapper, result. */
struct parse_ctx {
	void *scanner;
	void *buf; /* the flex buffer */
	struct ast_arena *arena;
	struct diag *diag;
	int file;
	const char *text;
	size_t len;
	jmp_buf fatal;
	int start_errors;
	/* scanner position */
	size_t pos, tok_start, raw_start;
	int line, col;
	YYLTYPE open_loc;
	int saw_nl, line_has_tok, line_has_comment;
	/* doc comment being collected (malloc'd) */
	char *doc;
	size_t doclen, doccap;
	/* statement-end insertion */
	int last_ends;
	YYLTYPE last_loc;
	int held, held_tok;
	YYSTYPE held_val;
	YYLTYPE held_loc;
	size_t held_off, held_len;
	/* the last token handed to the parser (for messages) */
	int la_tok, la_inserted;
	int prev_inserted; /* the token before the lookahead was an inserted ';' */
	size_t la_off, la_len;
	/* brackets */
	char stack[PARSE_MAX_NESTING + 1];
	YYLTYPE stack_loc[PARSE_MAX_NESTING + 1];
	int depth;
	int stopped;
	/* error recovery */
	int recovering, skip_open;
	int skip_brace; /* drop the next token's group if it is a '{' */
	int la_synth;   /* the lookahead is a closing bracket inserted by yylex() */
	int synth_done;
	size_t synth_off; /* the close bracket already reported as mismatched */
	int depth_reported;
	int eof_error; /* an unterminated comment or string ran to the end of the file */
	int unterm_line; /* line of an unterminated "string" (0: none): if the next line starts a
			  * new statement, the ( and [ opened on that line are closed silently */
	int fast;        /* parsed by kfp_parse_fast(): a syntax error only sets fast_failed */
	int fast_failed;
	/* result */
	struct vec *imports, *types, *components, *pipelines, *items;
};

/* Returns the struct loc of L in CTX's file (L NULL: the current position). */
struct loc parse_loc(struct parse_ctx *ctx, const YYLTYPE *l);

/* Puts back the byte the scanner replaced by NUL after the last token it returned (flex keeps it
 * in yy_hold_char until the next call), so a buffer scanned in place is intact again. */
void lex_restore(void *scanner);

/* Returns a span from A's start to B's end. */
YYLTYPE parse_span(const YYLTYPE *a, const YYLTYPE *b);

/* Returns N zeroed bytes from CTX's arena; longjmps to parse_text() when out of memory. */
void *parse_alloc(struct parse_ctx *ctx, size_t n);

/* Returns a NUL-terminated copy of S[0..N) in CTX's arena; longjmps when out of memory. */
char *parse_strndup(struct parse_ctx *ctx, const char *s, size_t n);

/* Same as parse_strndup(), shared with an equal short string (ast_intern()): never modified. */
const char *parse_intern(struct parse_ctx *ctx, const char *s, size_t n);
}

%code {
/* The span of a rule: from its first symbol's start to its last one's end (bison's default,
 * written with one struct copy). */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                                    \
	do {                                                                           \
		if (N) {                                                               \
			(Cur) = YYRHSLOC(Rhs, 1);                                      \
			if ((N) > 1) {                                                 \
				(Cur).last_line = YYRHSLOC(Rhs, N).last_line;          \
				(Cur).last_column = YYRHSLOC(Rhs, N).last_column;      \
			}                                                              \
		} else {                                                               \
			(Cur).first_line = (Cur).last_line = YYRHSLOC(Rhs, 0).last_line; \
			(Cur).first_column = (Cur).last_column =                       \
				YYRHSLOC(Rhs, 0).last_column;                          \
		}                                                                      \
	} while (0)

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lexer.h"
#include "parse.h"

static int yylex(YYSTYPE *v, YYLTYPE *l, struct parse_ctx *ctx);
static void yyerror(YYLTYPE *l, struct parse_ctx *ctx, const char *msg);
/* The same grammar's parser without LAC (see the header comment). */
int kfp_parse_fast(struct parse_ctx *ctx);

#define YYMAXDEPTH 20000

#define L(l) parse_loc(ctx, &(l))
static struct vec *vec_new(struct parse_ctx *ctx);
static struct vec *vec_push(struct parse_ctx *ctx, struct vec *v, void *p);
static void *vec_array(struct parse_ctx *ctx, struct vec *v, size_t size);
static struct names *names_push(struct parse_ctx *ctx, struct names *v, struct ast_name n);
static struct ast_name name_of(struct parse_ctx *ctx, const struct tok *t, const YYLTYPE *l);
static struct ast_expr *mk_expr(struct parse_ctx *ctx, enum ast_expr_kind k, const YYLTYPE *l);
static int expr_depth(const struct ast_expr *e);
static struct ast_expr *mk_string(struct parse_ctx *ctx, const struct tok *t, const YYLTYPE *l,
				  int raw);
static struct ast_expr *mk_op(struct parse_ctx *ctx, enum ast_op op, const YYLTYPE *opl,
			      struct ast_expr *a, struct ast_expr *b, const YYLTYPE *l);
static struct ast_stmt *mk_stmt(struct parse_ctx *ctx, enum ast_stmt_kind k, const YYLTYPE *l,
				void *p);
static struct vec *push_props(struct parse_ctx *ctx, struct vec *body, struct ast_prop *p,
			      int as_bitem);
static struct ast_type *mk_type(struct parse_ctx *ctx, const struct tok *a, const YYLTYPE *al,
				const struct tok *b, const YYLTYPE *bl, const YYLTYPE *l);
static struct ast_step *mk_step(struct parse_ctx *ctx, const struct tok *kw, const struct tok *name,
				const YYLTYPE *namel);
static void recovered(struct parse_ctx *ctx);
}

%define api.pure full
%define api.header.include {"parser.h"}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%param {struct parse_ctx *ctx}

%union {
	struct tok tok;
	struct ast_expr *expr;
	struct ast_type *type;
	struct vec *vec;
	struct ast_stmt *stmt;
	struct ast_step *step;
	struct ast_prop *prop;
	struct ast_parg *parg;
	struct ast_param *param;
	struct ast_constraint *cons;
	struct ast_block *block;
	struct ast_if *ifs;
	struct ast_for *loop;
	struct ast_output *output;
	struct ast_input *input;
	struct ast_arg *arg;
	struct ast_entry *entry;
	struct ast_map_entry *mentry;
	struct ast_name name;
	struct names *names;
	int op;
}

%token <tok> IDENT "name" STRING "string" RAWSTRING "raw string" INT "integer" FLOAT "number"
%token <tok> DURATION "duration"
%token <tok> IMPORT "'import'" AS "'as'" TYPE "'type'" COMPONENT "'component'"
%token <tok> PIPELINE "'pipeline'" STEP "'step'" IN "'in'" OUT "'out'" FROM "'from'" FOR "'for'"
%token <tok> PARALLEL "'parallel'" IF "'if'" ELSE "'else'" WHEN "'when'" FINALLY "'finally'"
%token <tok> AND "'and'" OR "'or'" NOT "'not'" MATCHES "'matches'" TRUE "'true'" FALSE "'false'"
%token <tok> EQ "'=='" NE "'!='" LE "'<='" GE "'>='" DOTDOT "'..'" ARROW "'->'"
%token <tok> '{' '}' '(' ')' '[' ']' '<' '>' ',' ':' ';' '.' '=' '!'

/* Only to resolve the greedy readings documented above: a property's arguments continue with a
 * name or string (shift) rather than end; a name followed by '(' is a call. */
%precedence PROP_END REF_END
%precedence IDENT STRING '('
%left OR
%left AND
%precedence NOT

%type <vec> pipe_stmts body_stmts block_items params param_list constraints args arg_list
%type <vec> call_args call_list list_items map_body pargs param_list_paren args_paren call_paren
%type <stmt> pipe_stmt body_stmt
%type <step> step step_head
%type <prop> property
%type <parg> parg
%type <param> param
%type <cons> constraint
%type <block> block
%type <ifs> if_stmt
%type <loop> for_stmt
%type <output> output
%type <input> input
%type <arg> arg
%type <entry> entry
%type <mentry> map_entry
%type <expr> expr primary call list map value_expr
%type <expr> number opt_default param_default when_clause
%type <type> type typename
%type <op> cmpop
%type <vec> pipe_body
%type <names> ref_parts
%type <ifs> else_part
%type <output> opt_from
%type <tok> opt_parallel
%type <type> opt_base

%%

file:
	  items
	;

items:
	  %empty
	| items item
	;

item:
	  import
	| typedecl
	| component
	| pipeline
	| ';'
	| error ';'                     { yyerrok; recovered(ctx); }
	;

import:
	  IMPORT STRING ';' {
		struct ast_import *im = parse_alloc(ctx, sizeof *im);
		im->path = mk_string(ctx, &$2, &@2, 0);
		im->loc = L(@$);
		vec_push(ctx, ctx->imports, im);
		struct ast_item *it = parse_alloc(ctx, sizeof *it);
		it->kind = AST_ITEM_IMPORT;
		it->u.import = im;
		vec_push(ctx, ctx->items, it);
	  }
	| IMPORT STRING AS IDENT ';' {
		struct ast_import *im = parse_alloc(ctx, sizeof *im);
		im->path = mk_string(ctx, &$2, &@2, 0);
		im->alias = name_of(ctx, &$4, &@4);
		im->loc = L(@$);
		vec_push(ctx, ctx->imports, im);
		struct ast_item *it = parse_alloc(ctx, sizeof *it);
		it->kind = AST_ITEM_IMPORT;
		it->u.import = im;
		vec_push(ctx, ctx->items, it);
	  }
	;

typedecl:
	  TYPE IDENT opt_base ';' {
		struct ast_typedecl *td = parse_alloc(ctx, sizeof *td);
		td->name = name_of(ctx, &$2, &@2);
		td->base = $3;
		td->doc = $1.doc;
		td->loc = L(@$);
		vec_push(ctx, ctx->types, td);
		struct ast_item *it = parse_alloc(ctx, sizeof *it);
		it->kind = AST_ITEM_TYPE;
		it->u.type = td;
		vec_push(ctx, ctx->items, it);
	  }
	;

opt_base:
	  %empty                        { $$ = NULL; }
	| ':' typename                  { $$ = $2; }
	;

component:
	  COMPONENT IDENT '{' body_stmts component_end {
		struct ast_component *c = parse_alloc(ctx, sizeof *c);
		c->name = name_of(ctx, &$2, &@2);
		c->body = (struct ast_stmt **)$4->v;
		c->nbody = $4->n;
		c->doc = $1.doc;
		c->loc = L(@$);
		vec_push(ctx, ctx->components, c);
		struct ast_item *it = parse_alloc(ctx, sizeof *it);
		it->kind = AST_ITEM_COMPONENT;
		it->u.component = c;
		vec_push(ctx, ctx->items, it);
	  }
	;

component_end:
	  '}'
	| error '}'                     { yyerrok; recovered(ctx); }
	;

pipeline:
	  PIPELINE IDENT param_list_paren pipe_body {
		struct ast_pipeline *p = parse_alloc(ctx, sizeof *p);
		p->name = name_of(ctx, &$2, &@2);
		p->params = (struct ast_param **)$3->v;
		p->nparams = $3->n;
		p->body = (struct ast_stmt **)$4->v;
		p->nbody = $4->n;
		p->doc = $1.doc;
		p->loc = L(@$);
		vec_push(ctx, ctx->pipelines, p);
		struct ast_item *it = parse_alloc(ctx, sizeof *it);
		it->kind = AST_ITEM_PIPELINE;
		it->u.pipeline = p;
		vec_push(ctx, ctx->items, it);
	  }
	;

param_list_paren:
	  '(' params ')'                { $$ = $2; }
	| '(' error ')'                 { yyerrok; recovered(ctx); $$ = vec_new(ctx); }
	;

params:
	  %empty                        { $$ = vec_new(ctx); }
	| param_list
	| param_list ','
	;

param_list:
	  param                         { $$ = vec_push(ctx, vec_new(ctx), $1); }
	| param_list ',' param          { $$ = vec_push(ctx, $1, $3); }
	;

param:
	  IDENT ':' type param_default constraints {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->name = name_of(ctx, &$1, &@1);
		$$->type = $3;
		$$->def = $4;
		$$->constraints = vec_array(ctx, $5, sizeof(struct ast_constraint));
		$$->nconstraints = $5->n;
		$$->doc = $1.doc;
		$$->loc = L(@$);
	  }
	;

opt_default:
	  %empty                        { $$ = NULL; }
	| '=' value_expr                { $$ = $2; }
	;

/* a parameter default is a single value: `= "x" matches "re"` is a default and a constraint */
param_default:
	  %empty                        { $$ = NULL; }
	| '=' primary                   { $$ = $2; }
	| '=' map                       { $$ = $2; }
	;

constraints:
	  %empty                        { $$ = vec_new(ctx); }
	| constraints constraint        { $$ = vec_push(ctx, $1, $2); }
	;

constraint:
	  IN number DOTDOT number {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->kind = AST_CONSTRAINT_RANGE;
		$$->lo = $2;
		$$->hi = $4;
		$$->loc = L(@$);
	  }
	| IN list {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->kind = AST_CONSTRAINT_ONE_OF;
		$$->list = $2;
		$$->loc = L(@$);
	  }
	| MATCHES STRING {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->kind = AST_CONSTRAINT_MATCHES;
		$$->regex = mk_string(ctx, &$2, &@2, 0);
		$$->loc = L(@$);
	  }
	;

number:
	  INT                           { $$ = mk_expr(ctx, AST_EXPR_INT, &@1); $$->u.i = $1.i; }
	| FLOAT                         { $$ = mk_expr(ctx, AST_EXPR_FLOAT, &@1); $$->u.f = $1.f; }
	;

type:
	  typename
	| IDENT '<' type '>' {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->kind = AST_TYPE_GENERIC;
		$$->name = name_of(ctx, &$1, &@1);
		$$->arg = $3;
		$$->loc = L(@$);
	  }
	;

typename:
	  IDENT                         { $$ = mk_type(ctx, &$1, &@1, NULL, NULL, &@$); }
	| IDENT '.' IDENT               { $$ = mk_type(ctx, &$1, &@1, &$3, &@3, &@$); }
	;

/* ---- pipeline bodies -------------------------------------------------------------------- */

pipe_body:
	  '{' pipe_stmts '}'            { $$ = $2; }
	| '{' pipe_stmts error '}'      { yyerrok; recovered(ctx); $$ = $2; }
	;

pipe_stmts:
	  %empty                        { $$ = vec_new(ctx); }
	| pipe_stmts pipe_stmt          { $$ = $2 ? vec_push(ctx, $1, $2) : $1; }
	| pipe_stmts property           { $$ = push_props(ctx, $1, $2, 0); }
	;

pipe_stmt:
	  step                          { $$ = mk_stmt(ctx, AST_STMT_STEP, &@$, $1); }
	| FINALLY step {
		$2->is_finally = 1;
		if ($1.doc && !$2->doc)
			$2->doc = $1.doc;
		$2->loc = L(@$);
		$$ = mk_stmt(ctx, AST_STMT_STEP, &@$, $2);
	  }
	| for_stmt                      { $$ = mk_stmt(ctx, AST_STMT_FOR, &@$, $1); }
	| if_stmt                       { $$ = mk_stmt(ctx, AST_STMT_IF, &@$, $1); }
	| output                        { $$ = mk_stmt(ctx, AST_STMT_OUTPUT, &@$, $1); }
	| ';'                           { $$ = NULL; }
	| error ';'                     { yyerrok; recovered(ctx); $$ = NULL; }
	;

step:
	  step_head when_clause {
		$$ = $1;
		$$->when = $2;
		$$->loc = L(@$);
	  }
	| step_head when_clause '{' body_stmts '}' {
		$$ = $1;
		$$->when = $2;
		$$->has_body = 1;
		$$->body = (struct ast_stmt **)$4->v;
		$$->nbody = $4->n;
		$$->loc = L(@$);
	  }
	| step_head when_clause '{' body_stmts error '}' {
		yyerrok;
		recovered(ctx);
		$$ = $1;
		$$->when = $2;
		$$->has_body = 1;
		$$->body = (struct ast_stmt **)$4->v;
		$$->nbody = $4->n;
		$$->loc = L(@$);
	  }
	;

step_head:
	  STEP IDENT                    { $$ = mk_step(ctx, &$1, &$2, &@2); }
	| STEP IDENT '=' IDENT args_paren {
		$$ = mk_step(ctx, &$1, &$2, &@2);
		$$->is_call = 1;
		$$->callee = name_of(ctx, &$4, &@4);
		$$->args = vec_array(ctx, $5, sizeof(struct ast_arg));
		$$->nargs = $5->n;
	  }
	| STEP IDENT '=' IDENT '.' IDENT args_paren {
		$$ = mk_step(ctx, &$1, &$2, &@2);
		$$->is_call = 1;
		$$->callee_alias = parse_alloc(ctx, sizeof *$$->callee_alias);
		*$$->callee_alias = name_of(ctx, &$4, &@4);
		$$->callee = name_of(ctx, &$6, &@6);
		$$->args = vec_array(ctx, $7, sizeof(struct ast_arg));
		$$->nargs = $7->n;
	  }
	;

when_clause:
	  %empty                        { $$ = NULL; }
	| WHEN expr                     { $$ = $2; }
	;

args_paren:
	  '(' args ')'                  { $$ = $2; }
	| '(' error ')'                 { yyerrok; recovered(ctx); $$ = vec_new(ctx); }
	;

args:
	  %empty                        { $$ = vec_new(ctx); }
	| arg_list
	| arg_list ','
	;

arg_list:
	  arg                           { $$ = vec_push(ctx, vec_new(ctx), $1); }
	| arg_list ',' arg              { $$ = vec_push(ctx, $1, $3); }
	;

arg:
	  IDENT ':' value_expr {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->name = name_of(ctx, &$1, &@1);
		$$->value = $3;
		$$->loc = L(@$);
	  }
	;

for_stmt:
	  FOR IDENT IN number DOTDOT number opt_parallel pipe_body {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->var = name_of(ctx, &$2, &@2);
		$$->is_range = 1;
		$$->lo = $4;
		$$->hi = $6;
		$$->has_parallel = $7.len != 0;
		$$->parallel = $7.i;
		$$->parallel_loc = L(@7);
		$$->body = (struct ast_stmt **)$8->v;
		$$->nbody = $8->n;
		$$->loc = L(@$);
	  }
	| FOR IDENT IN expr opt_parallel pipe_body {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->var = name_of(ctx, &$2, &@2);
		$$->items = $4;
		$$->has_parallel = $5.len != 0;
		$$->parallel = $5.i;
		$$->parallel_loc = L(@5);
		$$->body = (struct ast_stmt **)$6->v;
		$$->nbody = $6->n;
		$$->loc = L(@$);
	  }
	;

opt_parallel:
	  %empty                        { memset(&$$, 0, sizeof $$); }
	| PARALLEL INT                  { $$ = $2; $$.len = 1; }
	;

if_stmt:
	  IF expr pipe_body else_part {
		$$ = $4 ? $4 : parse_alloc(ctx, sizeof *$$);
		$$->cond = $2;
		$$->then_body = (struct ast_stmt **)$3->v;
		$$->nthen = $3->n;
		$$->loc = L(@$);
	  }
	;

/* a fresh struct ast_if carrying the else part, completed by if_stmt */
else_part:
	  %empty                        { $$ = NULL; }
	| ELSE pipe_body {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->has_else = 1;
		$$->else_body = (struct ast_stmt **)$2->v;
		$$->nelse = $2->n;
	  }
	| ELSE if_stmt {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->else_if = $2;
	  }
	;

output:
	  OUT IDENT ':' type opt_from opt_default {
		$$ = $5;
		$$->name = name_of(ctx, &$2, &@2);
		$$->type = $4;
		$$->value = $6;
		$$->doc = $1.doc;
		$$->loc = L(@$);
	  }
	;

/* a fresh struct ast_output carrying `from`, completed by output */
opt_from:
	  %empty                        { $$ = parse_alloc(ctx, sizeof *$$); }
	| FROM IDENT {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->from = parse_alloc(ctx, sizeof *$$->from);
		*$$->from = name_of(ctx, &$2, &@2);
	  }
	| FROM IDENT STRING {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->from = parse_alloc(ctx, sizeof *$$->from);
		*$$->from = name_of(ctx, &$2, &@2);
		$$->from_arg = mk_string(ctx, &$3, &@3, 0);
	  }
	;

input:
	  IN IDENT ':' type opt_default {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->name = name_of(ctx, &$2, &@2);
		$$->type = $4;
		$$->value = $5;
		$$->doc = $1.doc;
		$$->loc = L(@$);
	  }
	;

/* statements of components and step bodies */
body_stmts:
	  %empty                        { $$ = vec_new(ctx); }
	| body_stmts body_stmt          { $$ = $2 ? vec_push(ctx, $1, $2) : $1; }
	| body_stmts property           { $$ = push_props(ctx, $1, $2, 0); }
	;

body_stmt:
	  input                         { $$ = mk_stmt(ctx, AST_STMT_INPUT, &@$, $1); }
	| output                        { $$ = mk_stmt(ctx, AST_STMT_OUTPUT, &@$, $1); }
	| WHEN expr                     { $$ = mk_stmt(ctx, AST_STMT_WHEN, &@$, $2); }
	| ';'                           { $$ = NULL; }
	| error ';'                     { yyerrok; recovered(ctx); $$ = NULL; }
	;

/* ---- properties ------------------------------------------------------------------------- */

property:
	  IDENT pargs %prec PROP_END {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->name = name_of(ctx, &$1, &@1);
		$$->args = (struct ast_parg **)$2->v;
		$$->nargs = $2->n;
		$$->loc = L(@$);
	  }
	;

pargs:
	  %empty                        { $$ = vec_new(ctx); }
	| pargs parg                    { $$ = vec_push(ctx, $1, $2); }
	| pargs parg ','                { $2->comma_after = 1; $$ = vec_push(ctx, $1, $2); }
	;

parg:
	  expr {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->kind = AST_PARG_EXPR;
		$$->expr = $1;
		$$->loc = L(@$);
	  }
	| block {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->kind = AST_PARG_BLOCK;
		$$->block = $1;
		$$->loc = L(@$);
	  }
	;

block:
	  '{' block_items '}' {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->items = vec_array(ctx, $2, sizeof(struct ast_bitem));
		$$->nitems = $2->n;
		$$->loc = L(@$);
	  }
	| '{' block_items error '}' {
		yyerrok;
		recovered(ctx);
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->items = vec_array(ctx, $2, sizeof(struct ast_bitem));
		$$->nitems = $2->n;
		$$->loc = L(@$);
	  }
	;

block_items:
	  %empty                        { $$ = vec_new(ctx); }
	| block_items property          { $$ = push_props(ctx, $1, $2, 1); }
	| block_items entry {
		struct ast_bitem *bi = parse_alloc(ctx, sizeof *bi);
		bi->kind = AST_BITEM_ENTRY;
		bi->entry = $2;
		$$ = vec_push(ctx, $1, bi);
	  }
	| block_items ';'               { $$ = $1; }
	| block_items error ';'         { yyerrok; recovered(ctx); $$ = $1; }
	;

entry:
	  IDENT '=' value_expr {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->key = name_of(ctx, &$1, &@1);
		$$->value = $3;
		$$->loc = L(@$);
	  }
	| STRING '=' value_expr {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->key.s = $1.s;
		$$->key.loc = L(@1);
		$$->key_is_string = 1;
		$$->value = $3;
		$$->loc = L(@$);
	  }
	;

/* ---- expressions ------------------------------------------------------------------------ */

value_expr:
	  expr
	| map
	;

/* `or` binds loosest, then `and`, then `not`; a comparison joins two primaries (it does not
 * chain). Written with precedences rather than one nonterminal per level: a value then takes
 * three reductions instead of eight (the parser's cost per step of a big pipeline). */
expr:
	  primary
	| primary cmpop primary         { $$ = mk_op(ctx, (enum ast_op)$2, &@2, $1, $3, &@$); }
	| primary MATCHES STRING {
		$$ = mk_op(ctx, AST_OP_MATCHES, &@2, $1, mk_string(ctx, &$3, &@3, 0), &@$);
	  }
	| expr OR expr                  { $$ = mk_op(ctx, AST_OP_OR, &@2, $1, $3, &@$); }
	| expr AND expr                 { $$ = mk_op(ctx, AST_OP_AND, &@2, $1, $3, &@$); }
	| NOT expr                      { $$ = mk_op(ctx, AST_OP_NOT, &@1, $2, NULL, &@$); }
	;

cmpop:
	  EQ                            { $$ = AST_OP_EQ; }
	| NE                            { $$ = AST_OP_NE; }
	| '<'                           { $$ = AST_OP_LT; }
	| LE                            { $$ = AST_OP_LE; }
	| '>'                           { $$ = AST_OP_GT; }
	| GE                            { $$ = AST_OP_GE; }
	;

primary:
	  STRING                        { $$ = mk_string(ctx, &$1, &@1, 0); }
	| RAWSTRING                     { $$ = mk_string(ctx, &$1, &@1, 1); }
	| INT                           { $$ = mk_expr(ctx, AST_EXPR_INT, &@1); $$->u.i = $1.i; }
	| FLOAT                         { $$ = mk_expr(ctx, AST_EXPR_FLOAT, &@1); $$->u.f = $1.f; }
	| DURATION {
		$$ = mk_expr(ctx, AST_EXPR_DURATION, &@1);
		$$->u.dur.ms = $1.i;
		$$->u.dur.text = $1.s ? $1.s : "0s";
	  }
	| TRUE                          { $$ = mk_expr(ctx, AST_EXPR_BOOL, &@1); $$->u.b = 1; }
	| FALSE                         { $$ = mk_expr(ctx, AST_EXPR_BOOL, &@1); $$->u.b = 0; }
	| ref_parts {
		$$ = mk_expr(ctx, AST_EXPR_REF, &@$);
		$$->u.ref.parts = $1->v;
		$$->u.ref.nparts = $1->n;
	  }
	| call
	| list
	| '(' expr ')' {
		$$ = $2;
	  }
	| '(' error ')'                 { yyerrok; recovered(ctx); $$ = mk_expr(ctx, AST_EXPR_BOOL, &@$); }
	;

ref_parts:
	  IDENT %prec REF_END           { $$ = names_push(ctx, NULL, name_of(ctx, &$1, &@1)); }
	| ref_parts '.' IDENT           { $$ = names_push(ctx, $1, name_of(ctx, &$3, &@3)); }
	;

call:
	  IDENT call_paren {
		$$ = mk_expr(ctx, AST_EXPR_CALL, &@$);
		$$->u.call.name = parse_alloc(ctx, sizeof *$$->u.call.name);
		*$$->u.call.name = name_of(ctx, &$1, &@1);
		$$->u.call.args = (struct ast_expr **)$2->v;
		$$->u.call.nargs = $2->n;
		for (int i = 0; i < $2->n; i++)
			if (expr_depth($2->v[i]) + 1 > $$->u.call.depth)
				$$->u.call.depth = expr_depth($2->v[i]) + 1;
	  }
	;

call_paren:
	  '(' call_args ')'             { $$ = $2; }
	| '(' error ')'                 { yyerrok; recovered(ctx); $$ = vec_new(ctx); }
	;

call_args:
	  %empty                        { $$ = vec_new(ctx); }
	| call_list
	| call_list ','
	;

call_list:
	  value_expr                    { $$ = vec_push(ctx, vec_new(ctx), $1); }
	| call_list ',' value_expr      { $$ = vec_push(ctx, $1, $3); }
	;

list:
	  '[' list_items ']' {
		$$ = mk_expr(ctx, AST_EXPR_LIST, &@$);
		$$->u.list.items = (struct ast_expr **)$2->v;
		$$->u.list.nitems = $2->n;
		for (int i = 0; i < $2->n; i++)
			if (expr_depth($2->v[i]) + 1 > $$->u.list.depth)
				$$->u.list.depth = expr_depth($2->v[i]) + 1;
	  }
	| '[' list_items ',' ']' {
		$$ = mk_expr(ctx, AST_EXPR_LIST, &@$);
		$$->u.list.items = (struct ast_expr **)$2->v;
		$$->u.list.nitems = $2->n;
		for (int i = 0; i < $2->n; i++)
			if (expr_depth($2->v[i]) + 1 > $$->u.list.depth)
				$$->u.list.depth = expr_depth($2->v[i]) + 1;
	  }
	| '[' ']'                       { $$ = mk_expr(ctx, AST_EXPR_LIST, &@$); }
	| '[' error ']'                 { yyerrok; recovered(ctx); $$ = mk_expr(ctx, AST_EXPR_LIST, &@$); }
	;

list_items:
	  value_expr                    { $$ = vec_push(ctx, vec_new(ctx), $1); }
	| list_items ',' value_expr     { $$ = vec_push(ctx, $1, $3); }
	;

map:
	  '{' map_body '}' {
		$$ = mk_expr(ctx, AST_EXPR_MAP, &@$);
		$$->u.map.entries = vec_array(ctx, $2, sizeof(struct ast_map_entry));
		$$->u.map.nentries = $2->n;
		for (int i = 0; i < $2->n; i++) {
			struct ast_map_entry *me = $2->v[i];
			if (expr_depth(me->value) + 1 > $$->u.map.depth)
				$$->u.map.depth = expr_depth(me->value) + 1;
		}
	  }
	| '{' map_body error '}' {
		yyerrok;
		recovered(ctx);
		$$ = mk_expr(ctx, AST_EXPR_MAP, &@$);
		$$->u.map.entries = vec_array(ctx, $2, sizeof(struct ast_map_entry));
		$$->u.map.nentries = $2->n;
	  }
	;

/* entries separated by ',' or statement ends (a map may span lines) */
map_body:
	  %empty                        { $$ = vec_new(ctx); }
	| map_body map_entry            { $$ = vec_push(ctx, $1, $2); }
	| map_body ','                  { $$ = $1; }
	| map_body ';'                  { $$ = $1; }
	;

map_entry:
	  STRING ':' value_expr {
		$$ = parse_alloc(ctx, sizeof *$$);
		$$->key = mk_string(ctx, &$1, &@1, 0);
		$$->value = $3;
		$$->loc = L(@$);
	  }
	;

%%

/* ---- helpers ---------------------------------------------------------------------------- */

void *parse_alloc(struct parse_ctx *ctx, size_t n)
{
	void *p = ast_alloc(ctx->arena, n);

	if (!p)
		longjmp(ctx->fatal, 1);
	return p;
}

char *parse_strndup(struct parse_ctx *ctx, const char *s, size_t n)
{
	char *p = ast_strndup(ctx->arena, s, n);

	if (!p)
		longjmp(ctx->fatal, 1);
	return p;
}

const char *parse_intern(struct parse_ctx *ctx, const char *s, size_t n)
{
	const char *p = ast_intern(ctx->arena, s, n);

	if (!p)
		longjmp(ctx->fatal, 1);
	return p;
}

struct loc parse_loc(struct parse_ctx *ctx, const YYLTYPE *l)
{
	struct loc r;

	r.file = ctx->file;
	if (!l) {
		r.line = r.end_line = ctx->line;
		r.col = ctx->col;
		r.end_col = ctx->col + 1;
		return r;
	}
	r.line = l->first_line;
	r.col = l->first_column;
	r.end_line = l->last_line;
	r.end_col = l->last_column;
	return r;
}

YYLTYPE parse_span(const YYLTYPE *a, const YYLTYPE *b)
{
	YYLTYPE r = *a;

	r.last_line = b->last_line;
	r.last_column = b->last_column;
	return r;
}

static struct vec *vec_new(struct parse_ctx *ctx)
{
	return parse_alloc(ctx, sizeof(struct vec));
}

static struct vec *vec_push(struct parse_ctx *ctx, struct vec *v, void *p)
{
	if (v->n >= v->cap) {
		int cap = v->cap > 0 ? v->cap * 2 : 2;
		void **nv;

		if (v->cap >= (1 << 29))
			longjmp(ctx->fatal, 1);
		nv = parse_alloc(ctx, (size_t)cap * sizeof *nv);
		if (v->n)
			memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = p;
	return v;
}

/* Appends N to V (NULL: a new array). */
static struct names *names_push(struct parse_ctx *ctx, struct names *v, struct ast_name n)
{
	if (!v)
		v = parse_alloc(ctx, sizeof *v);
	if (v->n >= v->cap) {
		int cap = v->cap > 0 ? v->cap * 2 : 2;
		struct ast_name *nv;

		if (v->cap >= (1 << 26))
			longjmp(ctx->fatal, 1);
		nv = parse_alloc(ctx, (size_t)cap * sizeof *nv);
		if (v->n)
			memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = n;
	return v;
}

/* Copies the structs the vector points to into one array of SIZE-byte elements. */
static void *vec_array(struct parse_ctx *ctx, struct vec *v, size_t size)
{
	char *a;

	if (!v->n)
		return NULL;
	a = parse_alloc(ctx, (size_t)v->n * size);
	for (int i = 0; i < v->n; i++)
		memcpy(a + (size_t)i * size, v->v[i], size);
	return a;
}

static struct ast_name name_of(struct parse_ctx *ctx, const struct tok *t, const YYLTYPE *l)
{
	struct ast_name n;

	n.s = t->s ? t->s : "";
	n.loc = parse_loc(ctx, l);
	return n;
}

static struct ast_expr *mk_expr(struct parse_ctx *ctx, enum ast_expr_kind k, const YYLTYPE *l)
{
	struct ast_expr *e = parse_alloc(ctx, sizeof *e);

	e->kind = k;
	e->loc = parse_loc(ctx, l);
	return e;
}

/* Returns the nesting depth of E (a literal is 1; see ast.h). */
static int expr_depth(const struct ast_expr *e)
{
	int d;

	switch (e->kind) {
	case AST_EXPR_CALL: d = e->u.call.depth; break;
	case AST_EXPR_LIST: d = e->u.list.depth; break;
	case AST_EXPR_MAP: d = e->u.map.depth; break;
	case AST_EXPR_UNARY:
	case AST_EXPR_BINARY: d = e->u.op.depth; break;
	default: d = 1; break;
	}
	return d > 1 ? d : 1;
}

static struct ast_expr *mk_string(struct parse_ctx *ctx, const struct tok *t, const YYLTYPE *l,
				  int raw)
{
	struct ast_expr *e = mk_expr(ctx, AST_EXPR_STRING, l);

	e->u.str.s = t->s ? t->s : "";
	e->u.str.len = t->s ? t->len : 0;
	e->u.str.tmpl = t->tmpl ? t->tmpl : e->u.str.s;
	e->u.str.tmpl_len = t->tmpl ? t->tmpl_len : e->u.str.len;
	e->u.str.raw = raw;
	return e;
}

static struct ast_expr *mk_op(struct parse_ctx *ctx, enum ast_op op, const YYLTYPE *opl,
			      struct ast_expr *a, struct ast_expr *b, const YYLTYPE *l)
{
	struct ast_expr *e;
	struct loc *ol;
	int depth = expr_depth(a);

	if (b && expr_depth(b) > depth)
		depth = expr_depth(b);
	if (depth + 1 > PARSE_MAX_EXPR_DEPTH) {
		if (!ctx->depth_reported)
			diag_error(ctx->diag, "E001", parse_loc(ctx, opl),
				   "expression nested too deeply (more than %d levels)",
				   PARSE_MAX_EXPR_DEPTH);
		ctx->depth_reported = 1;
		return a;
	}
	e = mk_expr(ctx, b ? AST_EXPR_BINARY : AST_EXPR_UNARY, l);
	ol = parse_alloc(ctx, sizeof *ol);
	*ol = parse_loc(ctx, opl);
	e->u.op.op = op;
	e->u.op.op_loc = ol;
	e->u.op.lhs = a;
	e->u.op.rhs = b;
	e->u.op.depth = depth + 1;
	return e;
}

static struct ast_stmt *mk_stmt(struct parse_ctx *ctx, enum ast_stmt_kind k, const YYLTYPE *l,
				void *p)
{
	struct ast_stmt *s = parse_alloc(ctx, sizeof *s);

	s->kind = k;
	s->loc = parse_loc(ctx, l);
	s->u.step = p; /* every member is a pointer */
	switch (k) {
	case AST_STMT_STEP: s->u.step = p; break;
	case AST_STMT_FOR: s->u.loop = p; break;
	case AST_STMT_IF: s->u.cond = p; break;
	case AST_STMT_INPUT: s->u.input = p; break;
	case AST_STMT_OUTPUT: s->u.output = p; break;
	case AST_STMT_PROP: s->u.prop = p; break;
	case AST_STMT_WHEN: s->u.when = p; break;
	}
	return s;
}

static struct ast_type *mk_type(struct parse_ctx *ctx, const struct tok *a, const YYLTYPE *al,
				const struct tok *b, const YYLTYPE *bl, const YYLTYPE *l)
{
	struct ast_type *t = parse_alloc(ctx, sizeof *t);

	t->kind = AST_TYPE_NAME;
	if (b) {
		t->alias = parse_alloc(ctx, sizeof *t->alias);
		*t->alias = name_of(ctx, a, al);
		t->name = name_of(ctx, b, bl);
	} else {
		t->name = name_of(ctx, a, al);
	}
	t->loc = parse_loc(ctx, l);
	return t;
}

static struct ast_step *mk_step(struct parse_ctx *ctx, const struct tok *kw, const struct tok *name,
				const YYLTYPE *namel)
{
	struct ast_step *s = parse_alloc(ctx, sizeof *s);

	s->name = name_of(ctx, name, namel);
	s->doc = kw->doc;
	return s;
}

/* Property names that start a new property when written as a bare name argument (SPEC §2). */
static const char *const props[] = {
	"image", "run", "script", "env", "workdir", "resources", "retry", "timeout", "cache",
	"after", "node_selector", "toleration", "labels", "volume", "defaults", "parallelism",
	"schedule", "cpu", "memory", "gpu",
};

static int is_prop_name(const struct ast_parg *a)
{
	const struct ast_expr *e = a->expr;

	if (a->kind != AST_PARG_EXPR || e->kind != AST_EXPR_REF || e->u.ref.nparts != 1)
		return 0;
	for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
		if (strcmp(e->u.ref.parts[0].s, props[i]) == 0)
			return 1;
	return 0;
}

static struct loc loc_join(struct loc a, struct loc b)
{
	a.end_line = b.end_line;
	a.end_col = b.end_col;
	return a;
}

/* Appends P to BODY as statements (or block items when AS_BITEM), split at property names. */
static struct vec *push_props(struct parse_ctx *ctx, struct vec *body, struct ast_prop *p,
			      int as_bitem)
{
	/* segment k: the property name (p->name, or the name argument at index `at`), then its
	 * arguments [from, end) */
	int at = -1, from = 0;

	for (;;) {
		int end = from;
		struct ast_prop *q;

		while (end < p->nargs && !(is_prop_name(p->args[end]) &&
					    (end == 0 || !p->args[end - 1]->comma_after)))
			end++;
		if (at < 0 && end >= p->nargs) {
			q = p; /* the common case: nothing to split */
		} else {
			q = parse_alloc(ctx, sizeof *q);
			q->name = at < 0 ? p->name : p->args[at]->expr->u.ref.parts[0];
			q->args = p->args + from;
			q->nargs = end - from;
			q->loc = q->nargs ? loc_join(q->name.loc, q->args[q->nargs - 1]->loc)
					  : q->name.loc;
		}
		if (as_bitem) {
			struct ast_bitem *bi = parse_alloc(ctx, sizeof *bi);

			bi->kind = AST_BITEM_PROP;
			bi->prop = q;
			vec_push(ctx, body, bi);
		} else {
			struct ast_stmt *s = parse_alloc(ctx, sizeof *s);

			s->kind = AST_STMT_PROP;
			s->loc = q->loc;
			s->u.prop = q;
			vec_push(ctx, body, s);
		}
		if (end >= p->nargs)
			break;
		at = end;
		from = end + 1;
	}
	return body;
}

static void recovered(struct parse_ctx *ctx)
{
	ctx->recovering = 0;
	ctx->skip_open = 0;
}

/* ---- the token stream ------------------------------------------------------------------- */

/* Token classes for the token stream (one table look-up per token instead of comparisons). */
enum { TC_OPEN = 1, TC_CLOSE = 2, TC_ENDS = 4 };
#define TC_SIZE 512
static const unsigned char tok_class[TC_SIZE] = {
	['{'] = TC_OPEN, ['('] = TC_OPEN, ['['] = TC_OPEN,
	['}'] = TC_CLOSE | TC_ENDS, [')'] = TC_CLOSE | TC_ENDS, [']'] = TC_CLOSE | TC_ENDS,
	[IDENT] = TC_ENDS, [STRING] = TC_ENDS, [RAWSTRING] = TC_ENDS, [INT] = TC_ENDS,
	[FLOAT] = TC_ENDS, [DURATION] = TC_ENDS, [TRUE] = TC_ENDS, [FALSE] = TC_ENDS,
};
_Static_assert(YYMAXUTOK < TC_SIZE, "tok_class covers every token number");

static int tc(int t)
{
	return (unsigned)t < TC_SIZE ? tok_class[t] : 0;
}

static int is_open(int t)
{
	return tc(t) & TC_OPEN;
}

static int is_close(int t)
{
	return tc(t) & TC_CLOSE;
}

/* Returns 1 if a newline after token T ends a statement (SPEC §1). */
static int ends_stmt(int t)
{
	return (tc(t) & TC_ENDS) != 0;
}

#define MAX_ERRORS_PER_FILE 100

/* Returns 1 if token T (value V) starts a statement: '}', a statement keyword or a property name
 * (after an unterminated string, such a line is not a continuation of the string's line). */
static int starts_statement(int t, const YYSTYPE *v)
{
	switch (t) {
	case '}': case STEP: case IN: case OUT: case FOR: case IF: case FINALLY: case WHEN:
		return 1;
	case IDENT:
		for (size_t i = 0; v->tok.s && i < sizeof props / sizeof props[0]; i++)
			if (strcmp(v->tok.s, props[i]) == 0)
				return 1;
		return 0;
	default:
		return 0;
	}
}

static char opener_of(int t)
{
	return t == '}' ? '{' : t == ')' ? '(' : '[';
}

/* Returns 1 if the close bracket T matches the innermost open bracket. */
static int matches_top(const struct parse_ctx *ctx, int t)
{
	return ctx->depth > 0 && ctx->stack[ctx->depth - 1] == opener_of(t);
}

/* Returns 1 if some open bracket matches the close bracket T. */
static int has_opener(const struct parse_ctx *ctx, int t)
{
	for (int i = ctx->depth - 1; i >= 0; i--)
		if (ctx->stack[i] == opener_of(t))
			return 1;
	return 0;
}

/* Returns the next token from the scanner (0 at the end, or when the parse was stopped). */
static int raw_token(YYSTYPE *v, YYLTYPE *l, struct parse_ctx *ctx)
{
	int t;

	if (ctx->stopped) {
		l->first_line = l->last_line = ctx->line;
		l->first_column = l->last_column = ctx->col;
		return 0;
	}
	t = kfplex(v, l, ctx->scanner);
	if (diag_errors(ctx->diag) - ctx->start_errors > MAX_ERRORS_PER_FILE) {
		diag_error(ctx->diag, "E001", parse_loc(ctx, l),
			   "too many errors in this file; stopping here");
		ctx->stopped = 1;
		return 0;
	}
	return t;
}

/* Skips tokens up to and including the bracket closing a group opened DEPTH levels up.
 * Returns 0 normally, or -1 when the file ended first. */
static int skip_group(struct parse_ctx *ctx, int depth)
{
	YYSTYPE v;
	YYLTYPE l;

	while (depth > 0) {
		int t = raw_token(&v, &l, ctx);

		if (t == 0)
			return -1;
		if (is_open(t))
			depth++;
		else if (is_close(t))
			depth--;
	}
	ctx->saw_nl = 0;
	ctx->last_ends = 1;
	return 0;
}

static int yylex(YYSTYPE *v, YYLTYPE *l, struct parse_ctx *ctx)
{
	int t;
	size_t off, len;

	if (ctx->held && ctx->skip_brace && ctx->held_tok == '{') {
		/* the held '{' is the block to drop (see yyreport_syntax_error) */
		ctx->held = 0;
		ctx->skip_brace = 0;
		if (skip_group(ctx, 1) < 0) {
			t = 0;
			goto got;
		}
	}
	if (ctx->held) {
		ctx->held = 0;
		t = ctx->held_tok;
		*v = ctx->held_val;
		*l = ctx->held_loc;
		off = ctx->held_off;
		len = ctx->held_len;
		goto insert;
	}
	if (ctx->skip_open) {
		/* the lookahead of a syntax error opened a group: drop the whole group */
		ctx->skip_open = 0;
		if (ctx->depth > 0)
			ctx->depth--;
		if (skip_group(ctx, 1) < 0) {
			t = 0;
			goto got;
		}
	}
	for (;;) {
		t = raw_token(v, l, ctx);
		if ((ctx->recovering && is_open(t)) || (ctx->skip_brace && t == '{')) {
			ctx->skip_brace = 0;
			if (skip_group(ctx, 1) < 0) {
				t = 0;
				break;
			}
			continue;
		}
		break;
	}
got:
	off = ctx->tok_start;
	len = ctx->pos - ctx->tok_start;
	if (t == 0) {
		/* point at the end of the last token rather than at a blank last line */
		if (ctx->last_loc.last_line > 0) {
			l->first_line = l->last_line = ctx->last_loc.last_line;
			l->first_column = l->last_column = ctx->last_loc.last_column;
		} else {
			l->first_line = l->last_line = l->first_column = l->last_column = 1;
		}
		off = ctx->pos;
		len = 0;
	}
insert:
	if (ctx->unterm_line && ctx->saw_nl && t != 0) {
		char top = ctx->depth > 0 ? ctx->stack[ctx->depth - 1] : 0;

		if ((top == '(' || top == '[') &&
		    ctx->stack_loc[ctx->depth - 1].first_line == ctx->unterm_line &&
		    starts_statement(t, v)) {
			/* the string swallowed the rest of its line, closing brackets included:
			 * close them here (already reported) and keep the newline, so the statement
			 * ends and the next line is parsed as written */
			ctx->held = 1;
			ctx->held_tok = t;
			ctx->held_val = *v;
			ctx->held_loc = *l;
			ctx->held_off = off;
			ctx->held_len = len;
			memset(&v->tok, 0, sizeof v->tok);
			l->first_line = l->last_line = ctx->last_loc.last_line;
			l->first_column = l->last_column = ctx->last_loc.last_column;
			t = top == '(' ? ')' : ']';
			ctx->depth--;
			ctx->la_synth = 1;
			ctx->prev_inserted = ctx->la_inserted;
			ctx->la_tok = t;
			ctx->la_inserted = 0;
			ctx->la_off = off;
			ctx->la_len = 0;
			ctx->last_ends = 1;
			ctx->last_loc = *l;
			return t;
		}
		ctx->unterm_line = 0;
	}
	if (ctx->last_ends && (t == 0 || (ctx->saw_nl && t != ELSE)) &&
	    !(ctx->depth > 0 && ctx->stack[ctx->depth - 1] != '{')) {
		ctx->held = 1;
		ctx->held_tok = t;
		ctx->held_val = *v;
		ctx->held_loc = *l;
		ctx->held_off = off;
		ctx->held_len = len;
		memset(&v->tok, 0, sizeof v->tok);
		l->first_line = l->last_line = ctx->last_loc.last_line;
		l->first_column = l->last_column = ctx->last_loc.last_column;
		ctx->last_ends = 0;
		ctx->saw_nl = 0;
		ctx->prev_inserted = 0;
		ctx->la_tok = ';';
		ctx->la_inserted = 1;
		return ';';
	}
	ctx->la_synth = 0;
	if (is_close(t) && ctx->depth > 0 && !matches_top(ctx, t) && has_opener(ctx, t)) {
		/* `[1, 2 }`: close the inner brackets first, so one missing bracket costs one error
		 * and the enclosing construct still ends where the author meant */
		char top = ctx->stack[ctx->depth - 1];

		if (!ctx->recovering && (!ctx->synth_done || ctx->synth_off != off)) {
			struct loc at = parse_loc(ctx, l);
			YYLTYPE ol = ctx->stack_loc[ctx->depth - 1];

			diag_error(ctx->diag, "E001", at, "expected '%c' to close the '%c' at %d:%d, found '%c'",
				   top == '(' ? ')' : top == '[' ? ']' : '}', top, ol.first_line,
				   ol.first_column, t);
			ctx->synth_done = 1;
			ctx->synth_off = off;
		}
		ctx->held = 1;
		ctx->held_tok = t;
		ctx->held_val = *v;
		ctx->held_loc = *l;
		ctx->held_off = off;
		ctx->held_len = len;
		memset(&v->tok, 0, sizeof v->tok);
		l->last_line = l->first_line;
		l->last_column = l->first_column;
		t = top == '(' ? ')' : top == '[' ? ']' : '}';
		len = 0;
		ctx->la_synth = 1;
	}
	ctx->saw_nl = 0;
	ctx->prev_inserted = ctx->la_inserted;
	ctx->la_tok = t;
	ctx->la_inserted = 0;
	ctx->la_off = off;
	ctx->la_len = len;
	if (is_open(t)) {
		if (ctx->depth >= PARSE_MAX_NESTING) {
			diag_error(ctx->diag, "E001", parse_loc(ctx, l),
				   "nesting too deep (more than %d levels of brackets)",
				   PARSE_MAX_NESTING);
			ctx->stopped = 1;
			ctx->la_tok = 0;
			return 0;
		}
		ctx->stack_loc[ctx->depth] = *l;
		ctx->stack[ctx->depth++] = (char)t;
	} else if (is_close(t)) {
		char want = t == '}' ? '{' : t == ')' ? '(' : '[';

		for (int i = ctx->depth - 1; i >= 0; i--)
			if (ctx->stack[i] == want) {
				ctx->depth = i;
				break;
			}
	}
	ctx->last_ends = ends_stmt(t);
	ctx->last_loc = *l;
	return t;
}

/* ---- syntax errors ---------------------------------------------------------------------- */

static const char *sym_desc(yysymbol_kind_t k)
{
	switch (k) {
	case YYSYMBOL_YYEOF: return "end of file";
	case YYSYMBOL_IDENT: return "a name";
	case YYSYMBOL_STRING: return "a string";
	case YYSYMBOL_RAWSTRING: return "a raw string";
	case YYSYMBOL_INT: return "an integer";
	case YYSYMBOL_FLOAT: return "a number";
	case YYSYMBOL_DURATION: return "a duration";
	default: return strcmp(yysymbol_name(k), "';'") == 0 ? "end of line" : yysymbol_name(k);
	}
}

static int has(const yysymbol_kind_t *v, int n, yysymbol_kind_t k)
{
	for (int i = 0; i < n; i++)
		if (v[i] == k)
			return 1;
	return 0;
}

/* Returns 1 if the expected set V has the punctuation symbol named NAME ("'}'"). */
static int has_punct(const yysymbol_kind_t *v, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(yysymbol_name(v[i]), name) == 0)
			return 1;
	return 0;
}

static int is_keyword(yysymbol_kind_t k)
{
	switch (k) {
	case YYSYMBOL_IMPORT: case YYSYMBOL_AS: case YYSYMBOL_TYPE: case YYSYMBOL_COMPONENT:
	case YYSYMBOL_PIPELINE: case YYSYMBOL_STEP: case YYSYMBOL_IN: case YYSYMBOL_OUT:
	case YYSYMBOL_FROM: case YYSYMBOL_FOR: case YYSYMBOL_PARALLEL: case YYSYMBOL_IF:
	case YYSYMBOL_ELSE: case YYSYMBOL_WHEN: case YYSYMBOL_FINALLY: case YYSYMBOL_AND:
	case YYSYMBOL_OR: case YYSYMBOL_NOT: case YYSYMBOL_MATCHES: case YYSYMBOL_TRUE:
	case YYSYMBOL_FALSE:
		return 1;
	default:
		return 0;
	}
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, struct parse_ctx *ctx)
{
	yysymbol_kind_t exp[YYNTOKENS];
	yysymbol_kind_t la = yypcontext_token(yyctx);
	const YYLTYPE *l = yypcontext_location(yyctx);
	int n = yypcontext_expected_tokens(yyctx, exp, YYNTOKENS);
	char found[192], want[512];
	struct loc loc;

	if (ctx->fast) {
		/* leave the report to the LAC parser: stop reading, parse again */
		ctx->fast_failed = 1;
		ctx->stopped = 1;
		return 0;
	}
	if (ctx->stopped || (la == YYSYMBOL_YYEOF && ctx->eof_error))
		return 0;
	ctx->recovering = 1;
	if (ctx->la_synth)
		return 0; /* a bracket the token stream closed itself: already reported */
	if (is_open(ctx->la_tok) && !ctx->la_inserted)
		ctx->skip_open = 1;
	if (ctx->la_inserted && ctx->held && ctx->held_tok == '{')
		ctx->skip_brace = 1; /* `if c` NEWLINE `{`: drop that block with this error */
	if (n < 0)
		n = 0;
	/* what was found */
	if (la == YYSYMBOL_YYEOF)
		snprintf(found, sizeof found, "end of file");
	else if (ctx->la_inserted)
		snprintf(found, sizeof found, "end of line");
	else if ((la == YYSYMBOL_STRING || la == YYSYMBOL_RAWSTRING) && ctx->la_len <= 40 &&
		 !memchr(ctx->text + ctx->la_off, '\n', ctx->la_len))
		snprintf(found, sizeof found, "string %.*s", (int)ctx->la_len, ctx->text + ctx->la_off);
	else if (la == YYSYMBOL_STRING || la == YYSYMBOL_RAWSTRING)
		snprintf(found, sizeof found, "a string");
	else if (ctx->la_len > 0 && ctx->la_len <= 40 && ctx->la_off + ctx->la_len <= ctx->len)
		snprintf(found, sizeof found, "'%.*s'", (int)ctx->la_len, ctx->text + ctx->la_off);
	else
		snprintf(found, sizeof found, "%s", sym_desc(la));
	/* what was expected: a phrase for the big sets, else the list */
	want[0] = 0;
	if (has(exp, n, YYSYMBOL_IMPORT) && has(exp, n, YYSYMBOL_PIPELINE)) {
		snprintf(want, sizeof want,
			 "'import', 'type', 'component' or 'pipeline'");
	} else if (has(exp, n, YYSYMBOL_STEP) && has(exp, n, YYSYMBOL_FOR)) {
		snprintf(want, sizeof want, "%sa pipeline statement (step, for, if, out or a property)",
			 has_punct(exp, n, "'}'") ? "'}' or " : "");
	} else if (has(exp, n, YYSYMBOL_IN) && has(exp, n, YYSYMBOL_WHEN) &&
		   has(exp, n, YYSYMBOL_IDENT)) {
		snprintf(want, sizeof want, "%sa step property, 'in', 'out' or 'when'",
			 has_punct(exp, n, "'}'") ? "'}' or " : "");
	} else if (n > 6 && has(exp, n, YYSYMBOL_INT) && has(exp, n, YYSYMBOL_STRING)) {
		snprintf(want, sizeof want, "%san expression",
			 has_punct(exp, n, "'}'") ? "'}' or " :
			 has_punct(exp, n, "']'") ? "']' or " :
			 has_punct(exp, n, "')'") ? "')' or " : "");
	} else if (n > 8 && (has_punct(exp, n, "','") || has_punct(exp, n, "')'") ||
			     has_punct(exp, n, "']'") || has_punct(exp, n, "'}'"))) {
		/* after a complete expression: name the ways to go on that end it */
		static const char *const ends[] = {"','", "')'", "']'", "'}'"};
		const char *pick[4];
		int m = 0;
		size_t k = 0;

		for (int i = 0; i < 4; i++)
			if (has_punct(exp, n, ends[i]))
				pick[m++] = ends[i];
		for (int i = 0; i < m; i++) {
			int w = snprintf(want + k, sizeof want - k, "%s%s",
					 i == 0 ? "" : i == m - 1 ? " or " : ", ", pick[i]);
			if (w < 0 || (size_t)w >= sizeof want - k)
				break;
			k += (size_t)w;
		}
	} else if (n > 0 && n <= 8) {
		size_t k = 0;

		for (int i = 0; i < n; i++) {
			int w = snprintf(want + k, sizeof want - k, "%s%s",
					 i == 0 ? "" : i == n - 1 ? " or " : ", ", sym_desc(exp[i]));
			if (w < 0 || (size_t)w >= sizeof want - k)
				break;
			k += (size_t)w;
		}
	}
	if (has(exp, n, YYSYMBOL_IDENT) && n <= 2 && is_keyword(la) && !ctx->la_inserted) {
		size_t k = strlen(found);

		snprintf(found + k, sizeof found - k, " (a reserved word: it cannot be a name)");
	}
	if (ctx->prev_inserted && !ctx->la_inserted &&
	    (la == YYSYMBOL_AND || la == YYSYMBOL_OR || la == YYSYMBOL_EQ || la == YYSYMBOL_NE ||
	     la == YYSYMBOL_LE || la == YYSYMBOL_GE || la == YYSYMBOL_MATCHES ||
	     strcmp(yysymbol_name(la), "'<'") == 0 || strcmp(yysymbol_name(la), "'>'") == 0)) {
		size_t k = strlen(found);

		const char *op = yysymbol_name(la); /* "'and'": quoted already */

		snprintf(found + k, sizeof found - k,
			 " (the line before ended the statement: to continue an expression on the "
			 "next line, end the line with %s)", op);
	}
	loc = parse_loc(ctx, l);
	if (ctx->la_inserted || la == YYSYMBOL_YYEOF)
		loc.end_line = loc.line, loc.end_col = loc.col + 1;
	if (want[0])
		diag_error(ctx->diag, "E001", loc, "expected %s, found %s", want, found);
	else
		diag_error(ctx->diag, "E001", loc, "unexpected %s", found);
	if (la == YYSYMBOL_YYEOF && ctx->depth > 0)
		diag_note(ctx->diag, parse_loc(ctx, &ctx->stack_loc[ctx->depth - 1]),
			  "the '%c' opened here is not closed", ctx->stack[ctx->depth - 1]);
	return 0;
}

static void yyerror(YYLTYPE *l, struct parse_ctx *ctx, const char *msg)
{
	if (ctx->fast) {
		ctx->fast_failed = 1;
		ctx->stopped = 1;
		return;
	}
	if (ctx->stopped)
		return;
	if (strstr(msg, "exhausted"))
		diag_error(ctx->diag, "E001", parse_loc(ctx, l),
			   "input nested too deeply (parser stack exhausted)");
	else
		diag_error(ctx->diag, "E001", parse_loc(ctx, l), "%s", msg);
	ctx->stopped = 1;
}

/* ---- entry points ----------------------------------------------------------------------- */
#ifndef KFP_PARSE_FAST

static struct ast_file *parse(struct ast_arena *a, struct diag *d, int file, const char *text,
			      size_t len, char *inplace);

struct ast_file *parse_text(struct ast_arena *a, struct diag *d, int file, const char *text,
			    size_t len)
{
	return parse(a, d, file, text, len, NULL);
}

/* One parse of TEXT (see parse()) with kfp_parse_fast() when FAST, else with the LAC parser;
 * *FAILED is set when the fast parser met a syntax error (its tree is then incomplete). */
static struct ast_file *parse_pass(struct ast_arena *a, struct diag *d, int file, const char *text,
				   size_t len, char *inplace, int fast, int *failed)
{
	struct parse_ctx *ctx;
	struct ast_file *f = NULL;
	const char *nul;

	*failed = 0;
	if (!(ctx = calloc(1, sizeof *ctx)))
		return NULL;
	ctx->fast = fast;
	ctx->arena = a;
	ctx->diag = d;
	ctx->file = file;
	ctx->text = text;
	ctx->len = len;
	ctx->line = 1;
	ctx->col = 1;
	ctx->start_errors = diag_errors(d);
	if (setjmp(ctx->fatal) != 0) {
		f = NULL;
		goto out;
	}
	f = parse_alloc(ctx, sizeof *f);
	f->file = file;
	if (diag_file_path(d, file)) {
		const char *p = diag_file_path(d, file);
		f->path = ast_strndup(a, p, strlen(p));
	}
	ctx->imports = vec_new(ctx);
	ctx->types = vec_new(ctx);
	ctx->components = vec_new(ctx);
	ctx->pipelines = vec_new(ctx);
	ctx->items = vec_new(ctx);
	if (len > (size_t)INT32_MAX - 2) {
		diag_error(d, "E002", (struct loc){file, 0, 0, 0, 0}, "file too large to parse");
		goto out;
	}
	if ((nul = memchr(text, 0, len))) {
		struct loc at = {file, 1, 1, 1, 2};

		for (const char *p = text; p < nul; p++) {
			if (*p == '\n') {
				at.line++;
				at.col = 1;
			} else {
				at.col++;
			}
		}
		at.end_line = at.line;
		at.end_col = at.col + 1;
		diag_error(d, "E002", at, "source contains a NUL byte (is this a text file?)");
		goto out;
	}
	if (kfplex_init_extra(ctx, &ctx->scanner)) {
		ctx->scanner = NULL;
		f = NULL;
		goto out;
	}
	if (!inplace || !(ctx->buf = kfp_scan_buffer(inplace, len + 2, ctx->scanner)))
		ctx->buf = kfp_scan_bytes(text, (int)len, ctx->scanner);
	if (ctx->fast)
		kfp_parse_fast(ctx);
	else
		yyparse(ctx);
out:
	if (f) {
		f->imports = (struct ast_import **)ctx->imports->v;
		f->nimports = ctx->imports->n;
		f->types = (struct ast_typedecl **)ctx->types->v;
		f->ntypes = ctx->types->n;
		f->components = (struct ast_component **)ctx->components->v;
		f->ncomponents = ctx->components->n;
		f->pipelines = (struct ast_pipeline **)ctx->pipelines->v;
		f->npipelines = ctx->pipelines->n;
		f->items = vec_array(ctx, ctx->items, sizeof(struct ast_item));
		f->nitems = ctx->items->n;
	}
	if (ctx->scanner) {
		if (ctx->buf) {
			lex_restore(ctx->scanner); /* the byte after the last token (in place) */
			kfp_delete_buffer(ctx->buf, ctx->scanner);
		}
		kfplex_destroy(ctx->scanner);
	}
	*failed = ctx->fast_failed;
	free(ctx->doc);
	free(ctx);
	return f;
}

/* Parses TEXT; with INPLACE (TEXT itself, writable and followed by two NUL bytes) the scanner
 * reads it without taking a copy and restores it before returning. The fast parser first; on a
 * syntax error its diagnostics are dropped and the LAC parser reports (the first tree stays in
 * the arena until it is freed). */
static struct ast_file *parse(struct ast_arena *a, struct diag *d, int file, const char *text,
			      size_t len, char *inplace)
{
	struct diag_mark m = diag_mark(d);
	struct ast_file *f;
	int failed;

	f = parse_pass(a, d, file, text, len, inplace, 1, &failed);
	if (!failed)
		return f;
	diag_rollback(d, &m);
	return parse_pass(a, d, file, text, len, inplace, 0, &failed);
}

struct ast_file *parse_file(struct ast_arena *a, struct diag *d, int file)
{
	size_t len = 0;
	char *text = diag_file_scanbuf(d, file, &len);

	if (!text)
		return parse(a, d, file, "", 0, NULL);
	return parse(a, d, file, text, len, text);
}
#endif /* !KFP_PARSE_FAST */
