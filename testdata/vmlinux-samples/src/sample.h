/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sample.h - the small slice of <linux/kernel.h>, <linux/compiler.h> and
 * <linux/device.h> that the sample images need.
 *
 * Everything here mirrors a kernel idiom whose symbols ltosyms has to
 * understand: __init placement, __cold/__noreturn, static inline helpers
 * that LTO inlines across files, and DEVICE_ATTR_RO() show callbacks that
 * give many files a static function with the same name.
 */
#ifndef SAMPLE_H
#define SAMPLE_H

typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned int u32;
typedef unsigned long u64;

#define __always_inline	inline __attribute__((__always_inline__))
#define noinline	__attribute__((__noinline__))
#define __noreturn	__attribute__((__noreturn__))
#define __cold		__attribute__((__cold__))
#define __used		__attribute__((__used__))
#define __section(s)	__attribute__((__section__(s)))
#define __init		__section(".init.text") __cold
#define __initdata	__section(".init.data")
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define NULL		((void *)0)

#define SAMPLE_DEAD	0x1
#define SAMPLE_BUSY	0x2
#define SAMPLE_NOISY	0x4

/* The fields read by the name_show() callbacks sit at offsets 8, 16 and 24 so
 * that the callbacks differ in one displacement byte but not in length. */
struct sample_device {
	int id;
	int flags;
	const char *name;
	const char *label;
	const char *driver;
	unsigned long stats[4];
};

struct device_attribute {
	const char *name;
	ssize_t (*show)(struct sample_device *dev, struct device_attribute *attr,
			char *buf);
};

/* <linux/device.h>: DEVICE_ATTR_RO(name) defines dev_attr_name -> name_show */
#define DEVICE_ATTR_RO(_name)						\
	struct device_attribute dev_attr_##_name = {			\
		.name = #_name, .show = _name##_show }

struct widget {
	int id;
	int flags;
	int level;
	int refs;
	unsigned long counters[8];
	const char *tag;
};

/* lib.c */
int sample_sprintf(char *buf, const char *fmt, ...);
void sample_printk(const char *fmt, ...);
void __noreturn panic_sample(const char *msg);
void __cold sample_warn(const char *func, int line);
int widget_get_id(const struct widget *w);
int widget_lookup(int id);
noinline int widget_hw_read(struct widget *w, int reg);
void widget_debug_dump(const struct widget *w);

/* main.c */
void sample_register_attr(struct sample_device *dev, struct device_attribute *attr);
extern unsigned long sample_jiffies;
extern int sample_loglevel;

/* widget.c */
int widget_process(struct widget *w, int x);
void __noreturn widget_fatal(struct widget *w);
int widget_update(struct widget *w, int delta);
int widget_check(struct widget *w);
int widget_score_all(struct widget *ws, int n);
extern struct widget sample_widgets[4];

/*
 * <linux/init.h>: initcalls are reached through a linker-made table, so
 * no compiler (LTO included) can see who calls them.
 */
typedef int (*initcall_t)(void);
#define device_initcall(fn)						\
	static initcall_t __initcall_##fn __used			\
	__section(".initcall6.init") = fn

/* warn-like: the __func__ string becomes a local object (gcc: __func__.N) */
#define SAMPLE_WARN_ON(cond) ({						\
	int __ret_warn_on = !!(cond);					\
	if (unlikely(__ret_warn_on))					\
		sample_warn(__func__, __LINE__);			\
	unlikely(__ret_warn_on);					\
})

static inline int widget_is_dead(const struct widget *w)
{
	return w->flags & SAMPLE_DEAD;
}

static inline unsigned long widget_total(const struct widget *w)
{
	unsigned long sum = 0;
	int i;

	for (i = 0; i < 8; i++)
		sum += w->counters[i];
	return sum;
}

/*
 * A three-deep chain of forced inlines with a real call in the innermost
 * one: a return address inside widget_process() belongs to
 * chain_inner <- chain_middle <- chain_outer.
 */
static __always_inline int chain_inner(struct widget *w, int reg)
{
	int v = widget_hw_read(w, reg);

	return v ^ (reg << 3);
}

static __always_inline int chain_middle(struct widget *w, int reg)
{
	int v = chain_inner(w, reg * 2 + 1);

	w->counters[reg & 7] += v;
	return v + w->id;
}

static __always_inline int chain_outer(struct widget *w, int x)
{
	int v = chain_middle(w, x + 1);

	return v * 3 - w->level;
}

#endif /* SAMPLE_H */
