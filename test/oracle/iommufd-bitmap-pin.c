/*
 * Oracle case for issue 11, F4: what HWPT_GET_DIRTY_BITMAP does on Linux 6.12 when the
 * user bitmap cannot be pinned for write (read-only, PROT_NONE, or only partly writable),
 * and whether the dirty bits it could not report are cleared anyway.
 * Built and run by iommufd-bitmap-pin.sh (boots the 6.12 test kernel without VT-d, so the
 * IOMMUFD_TEST mock device works); its output is iommufd-bitmap-pin.out.
 * Each case: mark 2 KiB IO pages dirty in a mock dirty-tracking HWPT, GET into the bad
 * bitmap (print rc and what the writable part shows), then GET into a good bitmap (print
 * what is still reported).
 */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define PG 4096UL
#define IO_PAGE 2048UL
#define LEN (2UL << 20)
#define IOVA ((uint64_t)MOCK_APERTURE_START)
static int fd;
static uint32_t hwpt;

static int get_dirty(void *bitmap, uint64_t pgsz, uint32_t flags)
{
	struct iommu_hwpt_get_dirty_bitmap c = { .size = sizeof(c), .hwpt_id = hwpt, .flags = flags,
						 .iova = IOVA, .length = LEN, .page_size = pgsz,
						 .data = (uintptr_t)bitmap };
	return ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &c) ? -errno : 0;
}

/* Marks the 2 KiB pages listed (terminated by -1) dirty. */
static void mark(const int *pages)
{
	static uint8_t bits[LEN / 2048 / 8];
	memset(bits, 0, sizeof bits);
	for (; *pages >= 0; pages++) bits[*pages / 8] |= 1 << (*pages % 8);
	struct iommu_test_cmd c = { .size = sizeof(c), .op = IOMMU_TEST_OP_DIRTY, .id = hwpt,
				    .dirty = { .iova = IOVA, .length = LEN, .page_size = IO_PAGE,
					       .uptr = (uintptr_t)bits } };
	if (ioctl(fd, IOMMU_TEST_CMD, &c)) printf("mark: errno %d\n", errno);
}

static void show(const char *tag, const uint8_t *bm, size_t nbits)
{
	printf("%s:", tag);
	for (size_t i = 0; i < nbits; i++)
		if (bm[i / 8] & (1 << (i % 8))) printf(" %zu", i);
	printf("\n");
}

/* Harvests into a fresh writable bitmap and prints what is still dirty. */
static void still_dirty(void)
{
	static uint8_t good[LEN / 2048 / 8];
	memset(good, 0, sizeof good);
	int rc = get_dirty(good, IO_PAGE, 0);
	printf("  good bitmap rc=%d", rc);
	show(" still dirty", good, LEN / IO_PAGE);
}

int main(void)
{
	static const int pages[] = { 0, 1, 77, 600, 1023, -1 };
	fd = open("/dev/iommu", O_RDWR);
	struct iommu_ioas_alloc ia = { .size = sizeof(ia) };
	ioctl(fd, IOMMU_IOAS_ALLOC, &ia);
	struct iommu_test_cmd md = { .size = sizeof(md), .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = ia.out_ioas_id };
	if (ioctl(fd, IOMMU_TEST_CMD, &md)) { printf("mock domain: errno %d\n", errno); return 1; }
	void *buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	memset(buf, 0x5a, LEN);
	struct iommu_ioas_map m = { .size = sizeof(m), .ioas_id = ia.out_ioas_id, .user_va = (uintptr_t)buf,
				    .length = LEN, .iova = IOVA,
				    .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE };
	if (ioctl(fd, IOMMU_IOAS_MAP, &m)) { printf("map: errno %d\n", errno); return 1; }
	struct iommu_hwpt_alloc ha = { .size = sizeof(ha), .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				       .dev_id = md.mock_domain.out_idev_id, .pt_id = ia.out_ioas_id };
	if (ioctl(fd, IOMMU_HWPT_ALLOC, &ha)) { printf("hwpt: errno %d\n", errno); return 1; }
	hwpt = ha.out_hwpt_id;
	struct iommu_hwpt_set_dirty_tracking st = { .size = sizeof(st), .hwpt_id = hwpt, .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE };
	ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &st);

	uint8_t *area = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	memset(area, 0, 4 * PG);

	printf("case read-only bitmap\n");
	mark(pages);
	mprotect(area, PG, PROT_READ);
	printf("  ro bitmap rc=%d\n", get_dirty(area, IO_PAGE, 0));
	still_dirty();
	mprotect(area, PG, PROT_READ | PROT_WRITE);

	printf("case read-only bitmap NO_CLEAR\n");
	mark(pages);
	mprotect(area, PG, PROT_READ);
	printf("  ro bitmap rc=%d\n", get_dirty(area, IO_PAGE, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR));
	still_dirty();
	mprotect(area, PG, PROT_READ | PROT_WRITE);

	printf("case PROT_NONE bitmap\n");
	mark(pages);
	mprotect(area, PG, PROT_NONE);
	printf("  none bitmap rc=%d\n", get_dirty(area, IO_PAGE, 0));
	still_dirty();
	mprotect(area, PG, PROT_READ | PROT_WRITE);

	printf("case bitmap whose second page is read-only (bits 0..63 writable)\n");
	mark(pages);
	memset(area, 0, 2 * PG);
	mprotect(area + PG, PG, PROT_READ);
	printf("  split bitmap rc=%d", get_dirty(area + PG - 8, IO_PAGE, 0));
	show(" writable part", area + PG - 8, 64);
	still_dirty();
	mprotect(area + PG, PG, PROT_READ | PROT_WRITE);

	printf("case bitmap whose first page is read-only (bits 64.. writable)\n");
	mark(pages);
	memset(area, 0, 2 * PG);
	mprotect(area, PG, PROT_READ);
	printf("  split bitmap rc=%d", get_dirty(area + PG - 8, IO_PAGE, 0));
	show(" writable part (from bit 64)", area + PG, 1024 - 64);
	still_dirty();
	mprotect(area, PG, PROT_READ | PROT_WRITE);
	return 0;
}
