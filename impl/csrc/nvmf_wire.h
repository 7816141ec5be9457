/*
 * nvmf_wire.h — NVMe-oF RDMA bytes on the wire, as the specifications lay them out.
 *
 *   NVMe Base Specification 2.0:  4.1 Submission Queue Entry (64 bytes),
 *                                 4.4 SGL descriptors (16 bytes), 4.6 Completion Queue Entry
 *   NVMe over Fabrics 1.1:        3.3 Fabrics commands (Connect 3.3.1 and its 1024-byte data),
 *                                 3.4 capsules, Property Get/Set
 *   NVMe/RDMA Transport 1.0:      3.3 RDMA CM private data (request 32 bytes, accept 32 bytes,
 *                                 reject 32 bytes with a status)
 *
 * Every multi-byte field is little endian (the host order of the machines this runs on; the
 * static asserts below keep the layout honest).  Shared by the built-in target, the controller
 * emulation, the C workload host and the fuzz harness; the Python codec (impl/wire.py)
 * mirrors it field for field.
 */
#ifndef NVMF_WIRE_H
#define NVMF_WIRE_H
#include <stdint.h>

#define NVMF_SQE_SIZE   64
#define NVMF_CQE_SIZE   16
#define NVMF_SGL_DESC_SIZE 16
#define NVMF_CONNECT_DATA_SIZE 1024
#define NVMF_CM_PRIVATE_DATA_SIZE 32

/* SGL descriptor (NVMe base 4.4): byte 15 = type << 4 | subtype. */
#define NVME_SGL_TYPE_DATA_BLOCK     0x0
#define NVME_SGL_TYPE_BIT_BUCKET     0x1
#define NVME_SGL_TYPE_SEGMENT        0x2
#define NVME_SGL_TYPE_LAST_SEGMENT   0x3
#define NVME_SGL_TYPE_KEYED_DATA     0x4
#define NVME_SGL_TYPE_TRANSPORT_DATA 0x5
#define NVME_SGL_SUBTYPE_ADDRESS     0x0
#define NVME_SGL_SUBTYPE_OFFSET      0x1
#define NVME_SGL_SUBTYPE_INVALIDATE  0xF   /* keyed: invalidate the key after use */

/* Unkeyed form (data block, segment, last segment): address, 32-bit length. */
struct nvme_sgl_unkeyed {
    uint64_t address;
    uint32_t length;
    uint8_t reserved[3];
    uint8_t type_subtype;
};

/* Keyed data block (NVMe base 4.4.4 / NVMe-oF RDMA): address, 24-bit length, 32-bit key. */
struct nvme_sgl_keyed {
    uint64_t address;
    uint8_t length[3];          /* little endian, 24 bits */
    uint8_t key[4];             /* little endian, 32 bits (unaligned on purpose) */
    uint8_t type_subtype;
};

union nvme_sgl_desc {
    struct nvme_sgl_unkeyed unkeyed;
    struct nvme_sgl_keyed keyed;
    uint8_t raw[16];
};

/* Submission queue entry (NVMe base 4.1). PSDT (CDW0 bits 15:14) must be 01b or 10b for
 * SGLs; NVMe-oF requires SGLs (NVMe-oF 1.1, 2.1: "PSDT ... shall be set to 01b"). */
struct nvme_sqe {
    uint8_t opc;
    uint8_t fuse_psdt;          /* bits 1:0 FUSE, 7:6 PSDT */
    uint16_t cid;
    uint32_t nsid;
    uint32_t cdw2;
    uint32_t cdw3;
    uint64_t mptr;
    union nvme_sgl_desc sgl1;   /* DPTR */
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

/* Fabrics command SQE (NVMe-oF 1.1, 2.1.2 / 3.3): opc 7Fh, FCTYPE in byte 4. */
struct nvmf_fabric_sqe {
    uint8_t opc;                /* 0x7F */
    uint8_t fuse_psdt;
    uint16_t cid;
    uint8_t fctype;
    uint8_t reserved1[19];
    union nvme_sgl_desc sgl1;
    uint8_t specific[24];       /* command specific: bytes 40..63 */
};

/* Completion queue entry (NVMe base 4.6). status: bit 0 phase, 8:1 SC, 11:9 SCT,
 * 13:12 CRD, 14 M, 15 DNR. */
struct nvme_cqe {
    uint32_t cdw0;              /* command specific: Connect: CNTLID in bits 15:0 */
    uint32_t cdw1;
    uint16_t sqhd;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status;
};

#define NVME_CQE_PHASE(st)  ((st) & 1u)
#define NVME_CQE_SC(st)     (((st) >> 1) & 0xFFu)
#define NVME_CQE_SCT(st)    (((st) >> 9) & 0x7u)
#define NVME_CQE_DNR(st)    (((st) >> 15) & 1u)
/* status word from (sct << 8 | sc) as the target carries it, with DNR */
#define NVME_CQE_STATUS(sct_sc, dnr) \
    ((uint16_t)((((sct_sc) & 0xFFu) << 1) | ((((sct_sc) >> 8) & 0x7u) << 9) | ((dnr) ? 0x8000u : 0)))

/* Connect command (NVMe-oF 1.1, 3.3): fctype 01h; bytes 40..63 hold RECFMT, QID, SQSIZE,
 * CATTR, KATO. */
struct nvmf_connect_sqe {
    uint8_t opc;
    uint8_t fuse_psdt;
    uint16_t cid;
    uint8_t fctype;
    uint8_t reserved1[19];
    union nvme_sgl_desc sgl1;
    uint16_t recfmt;            /* 0 */
    uint16_t qid;
    uint16_t sqsize;            /* 0's based */
    uint8_t cattr;
    uint8_t reserved2;
    uint32_t kato;              /* milliseconds; 0 = no keep alive */
    uint8_t reserved3[12];
};

/* Connect data (NVMe-oF 1.1, 3.3, figure 20): 1024 bytes. */
struct nvmf_connect_data {
    uint8_t hostid[16];
    uint16_t cntlid;            /* 0xFFFF: dynamic controller model (admin queue) */
    uint8_t reserved1[238];
    char subnqn[256];
    char hostnqn[256];
    uint8_t reserved2[256];
};

/* Property Get / Set (NVMe-oF 1.1, 3.4 / 3.5): ATTRIB byte 40 bits 2:0 = size (0: 4 bytes,
 * 1: 8 bytes), OFST dword at byte 44, VALUE (set) at byte 48. */
struct nvmf_property_sqe {
    uint8_t opc;
    uint8_t fuse_psdt;
    uint16_t cid;
    uint8_t fctype;
    uint8_t reserved1[35];
    uint8_t attrib;
    uint8_t reserved2[3];
    uint32_t ofst;
    uint64_t value;
    uint8_t reserved3[8];
};

/* RDMA CM private data (NVMe/RDMA transport 1.0, 3.3). */
struct nvmf_rdma_request_private_data {
    uint16_t recfmt;            /* 0 */
    uint16_t qid;
    uint16_t hrqsize;           /* host receive queue size: 1's based */
    uint16_t hsqsize;           /* host send queue size: 0's based (the SQSIZE of Connect) */
    uint16_t cntlid;
    uint8_t reserved[22];
};

struct nvmf_rdma_accept_private_data {
    uint16_t recfmt;
    uint16_t crqsize;           /* controller receive queue size */
    uint8_t reserved[28];
};

struct nvmf_rdma_reject_private_data {
    uint16_t recfmt;
    uint16_t sts;               /* NVMF_RDMA_STS_* */
};

/* Reject status values (NVMe/RDMA transport 1.0, 3.3, figure 6). */
#define NVMF_RDMA_STS_INVALID_PRIVATE_DATA_LENGTH 0x01
#define NVMF_RDMA_STS_INVALID_RECFMT              0x02
#define NVMF_RDMA_STS_INVALID_QID                 0x03
#define NVMF_RDMA_STS_INVALID_HSQSIZE             0x04
#define NVMF_RDMA_STS_INVALID_HRQSIZE             0x05
#define NVMF_RDMA_STS_NO_RESOURCES                0x06
#define NVMF_RDMA_STS_INVALID_IRD                 0x07
#define NVMF_RDMA_STS_INVALID_ORD                 0x08

_Static_assert(sizeof(union nvme_sgl_desc) == 16, "SGL descriptor is 16 bytes");
_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvmf_fabric_sqe) == 64, "fabrics SQE is 64 bytes");
_Static_assert(sizeof(struct nvmf_connect_sqe) == 64, "connect SQE is 64 bytes");
_Static_assert(sizeof(struct nvmf_property_sqe) == 64, "property SQE is 64 bytes");
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE is 16 bytes");
_Static_assert(sizeof(struct nvmf_connect_data) == 1024, "connect data is 1024 bytes");
_Static_assert(sizeof(struct nvmf_rdma_request_private_data) == 32, "CM request data is 32 bytes");
_Static_assert(sizeof(struct nvmf_rdma_accept_private_data) == 32, "CM accept data is 32 bytes");

static inline uint32_t nvme_sgl_keyed_length(const struct nvme_sgl_keyed *k)
{
    return (uint32_t)k->length[0] | (uint32_t)k->length[1] << 8 | (uint32_t)k->length[2] << 16;
}
static inline uint32_t nvme_sgl_keyed_key(const struct nvme_sgl_keyed *k)
{
    return (uint32_t)k->key[0] | (uint32_t)k->key[1] << 8 | (uint32_t)k->key[2] << 16 |
           (uint32_t)k->key[3] << 24;
}
static inline void nvme_sgl_keyed_set(struct nvme_sgl_keyed *k, uint64_t addr, uint32_t len,
                                      uint32_t key, uint8_t subtype)
{
    k->address = addr;
    k->length[0] = (uint8_t)len;
    k->length[1] = (uint8_t)(len >> 8);
    k->length[2] = (uint8_t)(len >> 16);
    k->key[0] = (uint8_t)key;
    k->key[1] = (uint8_t)(key >> 8);
    k->key[2] = (uint8_t)(key >> 16);
    k->key[3] = (uint8_t)(key >> 24);
    k->type_subtype = (uint8_t)(NVME_SGL_TYPE_KEYED_DATA << 4 | (subtype & 0xF));
}

#endif
