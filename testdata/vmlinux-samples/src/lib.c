// SPDX-License-Identifier: GPL-2.0
/*
 * lib.c - printk/sprintf/panic stand-ins plus the helpers whose fate
 * differs between plain and LTO builds.
 */
#include "sample.h"
#include "stats.h"

char sample_log_buf[1024];
static size_t log_pos;
static int slot_table[16] = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3 };

void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

static char *put_num(char *p, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*p++ = '-';
	while (n)
		*p++ = tmp[--n];
	return p;
}

static int vformat(char *buf, const char *fmt, __builtin_va_list ap)
{
	char *p = buf;
	const char *s;

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			*p++ = *fmt;
			continue;
		}
		switch (*++fmt) {
		case 'd':
			p = put_num(p, __builtin_va_arg(ap, int));
			break;
		case 'l':
			fmt++;
			p = put_num(p, __builtin_va_arg(ap, long));
			break;
		case 's':
			for (s = __builtin_va_arg(ap, const char *); s && *s; s++)
				*p++ = *s;
			break;
		default:
			*p++ = *fmt;
			break;
		}
	}
	*p = 0;
	return (int)(p - buf);
}

int sample_sprintf(char *buf, const char *fmt, ...)
{
	__builtin_va_list ap;
	int n;

	__builtin_va_start(ap, fmt);
	n = vformat(buf, fmt, ap);
	__builtin_va_end(ap);
	return n;
}

void sample_printk(const char *fmt, ...)
{
	char line[128];
	__builtin_va_list ap;
	int n, i;

	__builtin_va_start(ap, fmt);
	n = vformat(line, fmt, ap);
	__builtin_va_end(ap);
	for (i = 0; i < n; i++)
		sample_log_buf[log_pos++ % sizeof(sample_log_buf)] = line[i];
}

/* Never returns: every caller's last call may be the last instruction. */
noinline void __noreturn panic_sample(const char *msg)
{
	sample_printk("Kernel panic - not syncing: %s\n", msg);
	for (;;)
		__asm__ volatile("hlt" ::: "memory");
}

noinline void __cold sample_warn(const char *func, int line)
{
	sample_printk("WARNING: at %s:%d\n", func, line);
}

/*
 * Global, small, called from three other files: out of line in plain
 * builds (no cross-file inlining), inlined into every caller and dropped
 * by LTO.
 */
int widget_get_id(const struct widget *w)
{
	return w->id + 100 * w->level;
}

/*
 * Global and referenced from nowhere: plain builds keep it (no
 * --gc-sections), LTO sees the whole program and drops it.
 */
void widget_debug_dump(const struct widget *w)
{
	int i;

	sample_printk("widget %d flags %d tag %s\n", w->id, w->flags, w->tag);
	for (i = 0; i < 8; i++)
		sample_printk("  counter[%d] = %ld\n", i, (long)w->counters[i]);
}

/*
 * static and kept out of line; reached from the small exported
 * widget_lookup().  When ThinLTO imports widget_lookup() into another
 * module it must promote this one to __lookup_slot.llvm.<hash>; gcc LTO
 * does the same with .lto_priv.N when the caller lands in another
 * partition.
 */
static noinline int __lookup_slot(int id)
{
	int i, best = -1;

	for (i = 0; i < (int)ARRAY_SIZE(slot_table); i++)
		if (slot_table[i] == (id & 15) && (best < 0 || i > best))
			best = i;
	slot_table[(id + 1) & 15]++;
	return best;
}

int widget_lookup(int id)
{
	return __lookup_slot(id) + 1;
}

/*
 * Global, with a static of the same name in drv_alpha.c, drv_beta.c and
 * drv_gamma.c.  Clang full LTO links every file into one module: this one
 * keeps its name and the statics become stats_show.N, which a clang-LTO
 * kernel of 5.16 - 6.1.41 prints as "stats_show" (kallsyms cuts at the
 * first dot).  drv_alpha.c's has the same code shape (same size, call at the
 * same offset), drv_beta.c's pads to the same size with its call elsewhere,
 * drv_gamma.c's is bigger.
 */
noinline ssize_t stats_show(struct sample_device *dev, struct device_attribute *attr, char *buf)
{
	return sample_sprintf(buf, "%ld\n", (long)dev->stats[0]);
}

noinline int widget_hw_read(struct widget *w, int reg)
{
	w->refs++;
	return (int)(w->counters[reg & 7] >> 1) + reg;
}
