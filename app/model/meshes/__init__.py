"""3D surface meshes of bodies, made per block and stitched (Qt-free).

:class:`BodyMesher` meshes one body at one scale from the dataset's blocks
(:mod:`~app.model.meshes.blocks`: each block with a 1-voxel overlap, marching
cubes), keeps block meshes in a :class:`MeshCache` that edits invalidate block
by block, and welds them into one mesh (:mod:`~app.model.meshes.stitch`);
:func:`mesh_plan` says which scales to mesh a body at, coarse first.
"""

from app.model.meshes.blocks import BlockMesh
from app.model.meshes.cache import MeshCache
from app.model.meshes.mesher import BodyMesh, BodyMesher, mesh_plan
from app.model.meshes.stitch import mesh_whole, stitch, to_s0

__all__ = ["BlockMesh", "BodyMesh", "BodyMesher", "MeshCache", "mesh_plan", "mesh_whole",
           "stitch", "to_s0"]
