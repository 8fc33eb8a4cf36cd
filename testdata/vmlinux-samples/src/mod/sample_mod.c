// SPDX-License-Identifier: GPL-2.0
/*
 * sample_mod.c - a loadable-module-like object.  Built with -c
 * -ffunction-sections and linked with ld -r like a .ko, so every function
 * sits in its own .text.<name> section at offset 0 and calls into the
 * kernel image stay unresolved relocations.
 */
#include "../sample.h"

#define __exit	__section(".exit.text") __cold
#define MODULE_INFO(tag, info)						\
	static const char __UNIQUE_modinfo_##tag[]			\
	__used __section(".modinfo") __attribute__((aligned(1))) = #tag "=" info

MODULE_INFO(license, "GPL");
MODULE_INFO(name, "sample_mod");
MODULE_INFO(vermagic, "6.1.0-sample SMP preempt mod_unload ");

struct module {
	char name[56];
	int (*init)(void);
	void (*exit)(void);
};

static int mod_debug;

static struct sample_device mod_dev = {
	.id = 99, .name = "samplemod0", .label = "Sample", .driver = "sample_mod",
};

/* Same name as the static name_show() functions of the image. */
static noinline ssize_t name_show(struct sample_device *dev,
				  struct device_attribute *attr, char *buf)
{
	return sample_sprintf(buf, "%s\n", dev->name);
}
static DEVICE_ATTR_RO(name);

static noinline void mod_log(const struct widget *w, int level, const char *msg)
{
	if (level > sample_loglevel)
		return;
	sample_printk("<%d>sample_mod: widget %d: %s\n", level, w->id, msg);
	if (w->flags & SAMPLE_NOISY)
		sample_printk("<%d>sample_mod: total %ld\n", level, (long)widget_total(w));
}

int sample_mod_poke(struct widget *w, int how)
{
	static int pokes;	/* gcc: pokes.N */

	pokes++;
	if (unlikely(w->refs < 0)) {
		sample_warn("sample_mod_poke", w->refs);
		sample_warn(w->tag, pokes);
		w->refs = 0;
		return -22;
	}
	if (how == 0xdead)
		panic_sample("sample_mod: poked to death");
	mod_log(w, 3, "poked");
	return chain_outer(w, how) + pokes;
}

static int __init sample_mod_init(void)
{
	mod_debug = sample_mod_poke(&sample_widgets[0], 1);
	mod_log(&sample_widgets[1], 3, "init");
	sample_register_attr(&mod_dev, &dev_attr_name);
	return 0;
}

static void __exit sample_mod_exit(void)
{
	mod_log(&sample_widgets[1], 3, "exit");
	mod_debug = 0;
}

/* include/linux/module.h: module_init()/module_exit() aliases */
#if __has_attribute(__copy__)
#define __copy(sym)	__attribute__((__copy__(sym)))
#else
#define __copy(sym)
#endif
int init_module(void) __copy(sample_mod_init) __attribute__((alias("sample_mod_init")));
void cleanup_module(void) __copy(sample_mod_exit) __attribute__((alias("sample_mod_exit")));

struct module __this_module __section(".gnu.linkonce.this_module") = {
	.name = "sample_mod",
	.init = init_module,
	.exit = cleanup_module,
};
