// SPDX-License-Identifier: GPL-2.0
/*
 * widget.c - functions shaped so that gcc makes its usual clones
 * (.constprop, .isra, .part, .cold), plus the forced-inline chain and a
 * function whose last instruction is a call to a noreturn function.
 */
#include "sample.h"

struct widget sample_widgets[4] = {
	{ .id = 1, .level = 2, .tag = "w1" },
	{ .id = 2, .flags = SAMPLE_BUSY, .level = 1, .tag = "w2" },
	{ .id = 3, .level = 3, .tag = "w3" },
	{ .id = 4, .flags = SAMPLE_NOISY, .tag = "w4" },
};

/* Every caller passes level 3: gcc IPA-CP makes widget_log.constprop.0. */
static noinline void widget_log(const struct widget *w, int level, const char *msg)
{
	if (level > sample_loglevel)
		return;
	sample_printk("<%d>widget %d: %s (flags %d)\n", level, w->id, msg, w->flags);
	if (w->flags & SAMPLE_NOISY)
		sample_printk("<%d>widget %d: total %ld\n", level, w->id, (long)widget_total(w));
}

/*
 * Reads two scalars through the pointer and nothing else: gcc IPA-SRA
 * passes them by value instead (widget_weight.isra.0).
 */
static noinline unsigned long widget_weight(const struct widget *w, int shift)
{
	unsigned long x = (unsigned long)w->id * 2654435761u;

	x ^= x >> shift;
	x += (unsigned long)w->level << (shift & 7);
	return x ^ (x >> 17);
}

/*
 * Cheap test up front, big body behind it: gcc partial inlining inlines
 * the test into the callers and outlines the rest (widget_refresh.part.0).
 */
static int widget_refresh(struct widget *w, int delta)
{
	int i;

	if (likely(!(w->flags & SAMPLE_BUSY)))
		return 0;

	for (i = 0; i < 8; i++) {
		w->counters[i] = w->counters[i] * 3 + (unsigned long)delta;
		if (w->counters[i] > 1000000)
			w->counters[i] /= 7;
	}
	w->refs += delta;
	widget_log(w, 3, "refreshed");
	sample_printk("refresh %d -> %ld/%ld/%ld\n", w->id, (long)w->counters[0],
		      (long)w->counters[1], (long)w->counters[7]);
	return 1 + (int)(widget_weight(w, 11) & 3);
}

int widget_update(struct widget *w, int delta)
{
	static int count;	/* gcc: count.N */
	int r;

	count++;
	r = widget_refresh(w, delta);
	w->level += r + (count & 1);
	return r;
}

int widget_score_all(struct widget *ws, int n)
{
	unsigned long sum = 0;
	int i;

	for (i = 0; i < n; i++) {
		sum += widget_weight(&ws[i], 5);
		sum += (unsigned long)widget_refresh(&ws[i], i);
	}
	widget_log(&ws[0], 3, "scored");
	return (int)(sum & 0xffff);
}

/*
 * The unlikely branch calls __cold functions only: gcc moves it to
 * widget_check.cold in .text.unlikely.  SAMPLE_WARN_ON also gives gcc's
 * __func__.N object.
 */
int widget_check(struct widget *w)
{
	if (SAMPLE_WARN_ON(w->refs < 0)) {
		sample_warn("widget_check: refs", w->id);
		sample_warn(w->tag, w->refs);
		w->refs = 0;
		return -22;
	}
	return widget_is_dead(w) ? -2 : widget_get_id(w);
}

/*
 * The call to panic_sample() is this function's last instruction, so its
 * return address is the first byte of whatever symbol follows.  The call
 * is placed with inline assembly so that it ends on a 16-byte boundary:
 * the next function (16-byte aligned) then starts exactly at the return
 * address instead of after padding, as an x86 oops prints it:
 * widget_fatal+0xSIZE/0xSIZE.
 */
noinline void __noreturn widget_fatal(struct widget *w)
{
	w->flags |= SAMPLE_DEAD;
	sample_printk("widget %d is dead\n", w->id);
	__asm__ volatile(".balign 16, 0x90\n\t"
			 ".skip 11, 0x90\n\t"
			 "call %c1"
			 : : "D" ("widget dead"), "i" (panic_sample) : "memory");
	__builtin_unreachable();
}

/* chain_outer -> chain_middle -> chain_inner (all __always_inline, sample.h) */
noinline int widget_process(struct widget *w, int x)
{
	int v;

	if (unlikely(w->flags & SAMPLE_DEAD))
		widget_fatal(w);
	v = chain_outer(w, x);
	return v + widget_lookup(x);
}
