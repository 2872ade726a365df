/* uprobe_multi links made with bpf(2) itself, for libbpf 1.1 (see umulti.h). */
#include "kernel/umulti.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* From the kernel's uapi (6.6+), which Debian 12's headers predate. */
#define RW_BPF_TRACE_UPROBE_MULTI    48
#define RW_BPF_F_UPROBE_MULTI_RETURN 1U

/* bpf_attr.link_create as 6.6 lays it out for uprobe_multi. */
struct umulti_attr {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t um_flags;
	uint32_t pid;
};

static int link_create(int prog_fd, const char *path, const uint64_t *off, const uint64_t *cookie,
		       uint32_t flags)
{
	struct umulti_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_fd = (uint32_t)prog_fd;
	a.attach_type = RW_BPF_TRACE_UPROBE_MULTI;
	a.path = (uint64_t)(uintptr_t)path;
	a.offsets = (uint64_t)(uintptr_t)off;
	a.cookies = (uint64_t)(uintptr_t)cookie;
	a.cnt = 1;
	a.um_flags = flags;
	return (int)syscall(SYS_bpf, BPF_LINK_CREATE, &a, sizeof(a));
}

/* As libbpf (1.3+) probes it: a kernel with these links refuses a path that is not a
 * regular file with EBADF; one without them refuses the attach type with EINVAL. */
static bool kernel_has_umulti(void)
{
	const struct bpf_insn ret0[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = RW_BPF_TRACE_UPROBE_MULTI);
	uint64_t off = 0;
	int prog, link;
	bool yes;

	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, NULL, "GPL", ret0, 2, &o);
	if (prog < 0)
		return false;
	link = link_create(prog, "/", &off, NULL, 0);
	yes = link < 0 && errno == EBADF;
	if (link >= 0)
		close(link);
	close(prog);
	return yes;
}

bool umulti_supported(void)
{
	static int known = -1;

	if (known < 0)
		known = !getenv("RUNWARDEN_NO_UPROBE_MULTI") && kernel_has_umulti();
	return known;
}

int umulti_prepare(struct bpf_program *p)
{
	return bpf_program__set_expected_attach_type(p, RW_BPF_TRACE_UPROBE_MULTI);
}

/* The symbol's address to a file offset, through the section that holds it. */
static int addr_to_offset(Elf *e, uint64_t addr, uint64_t *off)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(e, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		if (addr >= sh.sh_addr && addr < sh.sh_addr + sh.sh_size) {
			*off = addr - sh.sh_addr + sh.sh_offset;
			return 0;
		}
	}
	return -1;
}

/* The defined function named func in one symbol table: its address, or 0. */
static uint64_t find_in_symtab(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh, const char *func)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;

	for (size_t i = 0; d && i < n; i++) {
		GElf_Sym s;
		const char *name;

		if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
		    s.st_shndx == SHN_UNDEF || !s.st_value)
			continue;
		name = elf_strptr(e, sh->sh_link, s.st_name);
		if (name && !strcmp(name, func))
			return s.st_value;
	}
	return 0;
}

int umulti_func_offset(const char *path, const char *func, uint64_t *off, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t addr = 0;
	Elf *e = NULL;
	int rc = -1;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (elf_version(EV_CURRENT) == EV_NONE || !(e = elf_begin(fd, ELF_C_READ, NULL)) ||
	    elf_kind(e) != ELF_K_ELF) {
		snprintf(err, errlen, "%s: not an ELF file", path);
		goto out;
	}
	/* the dynamic symbols first (what a library exports), then the full table */
	for (int pass = 0; pass < 2 && !addr; pass++) {
		Elf_Scn *scn = NULL;
		GElf_Shdr sh;

		while (!addr && (scn = elf_nextscn(e, scn)))
			if (gelf_getshdr(scn, &sh) &&
			    sh.sh_type == (pass ? SHT_SYMTAB : SHT_DYNSYM))
				addr = find_in_symtab(e, scn, &sh, func);
	}
	if (!addr) {
		snprintf(err, errlen, "%s: no function %s", path, func);
		goto out;
	}
	if (addr_to_offset(e, addr, off)) {
		snprintf(err, errlen, "%s: %s is in no section", path, func);
		goto out;
	}
	rc = 0;
out:
	if (e)
		elf_end(e);
	close(fd);
	return rc;
}

int umulti_attach(int prog_fd, const char *path, uint64_t off, uint64_t cookie, bool ret)
{
	return link_create(prog_fd, path, &off, &cookie, ret ? RW_BPF_F_UPROBE_MULTI_RETURN : 0);
}
