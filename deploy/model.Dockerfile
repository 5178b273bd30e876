# A model image: the ievo runtime image plus one model file, for the StatefulSet's `model` init
# container (it copies /model/model.safetensors into the pod's model volume). Build it from a
# directory holding model.safetensors (from `ievo train` or `ievo model init`):
#   docker build -f deploy/model.Dockerfile --build-arg IEVO_IMAGE=ievo:v1 -t ievo-model:v1 DIR
ARG IEVO_IMAGE=ievo:v1
FROM ${IEVO_IMAGE}
COPY model.safetensors /model/model.safetensors
