#!/bin/sh
# tensorflow/serving's entrypoint, for tfrelay: with a --model_config_file the MODEL_* variables are
# not used; every argument is passed through.
set -e
case " $* " in
  *" --model_config_file"*) exec tfrelay-model-server --port=8500 --rest_api_port=8501 "$@" ;;
  *) exec tfrelay-model-server --port=8500 --rest_api_port=8501 \
       --model_name="${MODEL_NAME}" --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" "$@" ;;
esac
