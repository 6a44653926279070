//go:build !purego

#include "textflag.h"

// STOPPED ends a run at the first stop in the block at DI: AX holds the
// stops' mask, DX the block's high bits. The run grows by the bytes
// before the stop, and R8 takes their high bits.
#define STOPPED \
	BSFL AX, AX; \
	MOVL AX, CX; \
	MOVL $1, R9; \
	SHLL CX, R9; \
	DECL R9; \
	ANDL R9, DX; \
	ORL  DX, R8; \
	ADDQ AX, DI

// func plainRunSSE2(b []byte, x byte) (n int, high bool)
//
// SSE2, which every amd64 processor has: 16 bytes per step. A byte
// stops the run when it is a control character other than tab, LF and
// CR (below 0x20 as a signed byte, which non-ASCII bytes also are, so
// their high bits are taken out), '<', '&' or x.
TEXT ·plainRunSSE2(SB), NOSPLIT, $0-41
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), BX
	MOVBQZX x+24(FP), AX

	// X1 = '<', X2 = '&', X3 = 0x20, X4 = x, in every byte.
	MOVQ $0x3c3c3c3c3c3c3c3c, CX
	MOVQ CX, X1
	PUNPCKLQDQ X1, X1
	MOVQ $0x2626262626262626, CX
	MOVQ CX, X2
	PUNPCKLQDQ X2, X2
	MOVQ $0x2020202020202020, CX
	MOVQ CX, X3
	PUNPCKLQDQ X3, X3
	MOVQ $0x0101010101010101, CX
	IMULQ CX, AX
	MOVQ AX, X4
	PUNPCKLQDQ X4, X4
	// X8 = 0x04, X9 = '\r', X10 = '\n': a tab or CR ORed with 0x04 is
	// CR, and no other byte is.
	MOVQ $0x0404040404040404, CX
	MOVQ CX, X8
	PUNPCKLQDQ X8, X8
	MOVQ $0x0d0d0d0d0d0d0d0d, CX
	MOVQ CX, X9
	PUNPCKLQDQ X9, X9
	MOVQ $0x0a0a0a0a0a0a0a0a, CX
	MOVQ CX, X10
	PUNPCKLQDQ X10, X10

	XORQ DI, DI // n
	XORL R8, R8 // high bits seen
	SUBQ $16, BX
	JL   done

loop:
	CMPQ DI, BX
	JG   done
	MOVOU (SI)(DI*1), X0

	// Bytes below 0x20 as signed bytes: controls and non-ASCII.
	MOVOU   X3, X5
	PCMPGTB X0, X5
	PMOVMSKB X5, AX
	// Non-ASCII: their high bits.
	PMOVMSKB X0, DX
	// Tabs and newlines, which text may hold.
	MOVOU   X0, X6
	POR     X8, X6
	PCMPEQB X9, X6
	MOVOU   X0, X7
	PCMPEQB X10, X7
	POR     X7, X6
	PMOVMSKB X6, CX
	ORL     DX, CX
	NOTL    CX
	ANDL    CX, AX // other controls only

	MOVOU   X0, X6
	PCMPEQB X1, X6
	MOVOU   X0, X7
	PCMPEQB X2, X7
	POR     X7, X6
	MOVOU   X0, X7
	PCMPEQB X4, X7
	POR     X7, X6
	PMOVMSKB X6, CX
	ORL     CX, AX
	JNZ     found

	ORL  DX, R8
	ADDQ $16, DI
	JMP  loop

found:
	STOPPED

done:
	MOVQ DI, n+32(FP)
	TESTL R8, R8
	SETNE high+40(FP)
	RET

// func plainRunAVX2(b []byte, x byte) (n int, high bool)
//
// plainRunSSE2 with AVX2: 32 bytes per step.
TEXT ·plainRunAVX2(SB), NOSPLIT, $0-41
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), BX
	MOVBQZX x+24(FP), AX

	MOVL $0x3c, CX
	MOVQ CX, X1
	VPBROADCASTB X1, Y1 // '<'
	MOVL $0x26, CX
	MOVQ CX, X2
	VPBROADCASTB X2, Y2 // '&'
	MOVL $0x20, CX
	MOVQ CX, X3
	VPBROADCASTB X3, Y3 // 0x20
	MOVQ AX, X4
	VPBROADCASTB X4, Y4 // x
	MOVL $0x04, CX
	MOVQ CX, X8
	VPBROADCASTB X8, Y8 // 0x04
	MOVL $0x0d, CX
	MOVQ CX, X9
	VPBROADCASTB X9, Y9 // '\r'
	MOVL $0x0a, CX
	MOVQ CX, X10
	VPBROADCASTB X10, Y10 // '\n'

	XORQ DI, DI // n
	XORL R8, R8 // high bits seen
	SUBQ $32, BX
	JL   avxdone

avxloop:
	CMPQ DI, BX
	JG   avxdone
	VMOVDQU (SI)(DI*1), Y0

	// Bytes below 0x20 as signed bytes, less the non-ASCII ones, tabs
	// and newlines.
	VPCMPGTB  Y0, Y3, Y5
	VPMOVMSKB Y5, AX
	VPMOVMSKB Y0, DX
	VPOR      Y8, Y0, Y6
	VPCMPEQB  Y9, Y6, Y6
	VPCMPEQB  Y10, Y0, Y7
	VPOR      Y7, Y6, Y6
	VPMOVMSKB Y6, CX
	ORL       DX, CX
	NOTL      CX
	ANDL      CX, AX

	VPCMPEQB  Y1, Y0, Y6
	VPCMPEQB  Y2, Y0, Y7
	VPOR      Y7, Y6, Y6
	VPCMPEQB  Y4, Y0, Y7
	VPOR      Y7, Y6, Y6
	VPMOVMSKB Y6, CX
	ORL       CX, AX
	JNZ       avxfound

	ORL  DX, R8
	ADDQ $32, DI
	JMP  avxloop

avxfound:
	STOPPED

avxdone:
	VZEROUPPER
	MOVQ DI, n+32(FP)
	TESTL R8, R8
	SETNE high+40(FP)
	RET
