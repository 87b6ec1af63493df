"""vgc_exec_ops.h: the executor's table of driver functions."""

from emit_common import HEADER


def emit(api):
    out = [HEADER % 'cudaTypedefs.h',
           '#ifndef VGC_EXEC_OPS_H\n#define VGC_EXEC_OPS_H\n\n',
           '#include "vgc_cuda.h"\n\n',
           '/* One member per exported driver symbol, typed by its PFN typedef.\n'
           ' * NULL means the executor does not implement it. */\n',
           'struct vgc_exec_ops {\n']
    for s in api.sorted_symbols():
        out.append('    %s %s;\n' % (s.pfn, s.name))
    out.append('};\n\n')
    out.append('/* Symbol names in member order, for loaders and diagnostics. */\n')
    out.append('#define VGC_EXEC_OPS_COUNT %d\n' % len(api.symbols))
    out.append('extern const char *const vgc_exec_ops_names[VGC_EXEC_OPS_COUNT];\n\n')
    out.append('#endif /* VGC_EXEC_OPS_H */\n')
    return ''.join(out)


def emit_names(api):
    out = [HEADER % 'cudaTypedefs.h', '#include <stddef.h>\n',
           '#include "vgc_exec_ops.h"\n\n',
           '_Static_assert(sizeof(struct vgc_exec_ops) == '
           'VGC_EXEC_OPS_COUNT * sizeof(void (*)(void)),\n'
           '               "vgc_exec_ops holds only function pointers");\n\n',
           'const char *const vgc_exec_ops_names[VGC_EXEC_OPS_COUNT] = {\n']
    for s in api.sorted_symbols():
        out.append('    "%s",\n' % s.name)
    out.append('};\n')
    return ''.join(out)
