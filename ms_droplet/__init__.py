# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.
"""ms_droplet: droplet search, a coordinate-descent search strategy for TVM MetaSchedule.

Importing this package registers the strategy name ``"droplet"``; with the package installed, a
plain ``import tvm`` does the same through TVM's ``tvm.backends`` entry points.

>>> from tvm.s_tir import meta_schedule as ms
>>> ms.tune_tir(mod, target, work_dir, max_trials_global=128, strategy="droplet")  # doctest: +SKIP
>>> ms_droplet.post_optimize(work_dir, trials=64)  # doctest: +SKIP
"""

from .postopt import post_optimize
from .registry import register
from .strategy import DropletSearch

register()

__all__ = ["DropletSearch", "post_optimize", "register"]
__version__ = "0.1.0"
