// DynaScene: an upload button for the "Load Camera Pose File" node. The chosen .txt file is sent to
// ComfyUI's own upload endpoint (/upload/image, which stores any file in the input folder) and then
// selected in the node's pose_file list; nothing else is read or written.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE = "DynaSceneLoadCameraPoseFile";

async function uploadPoseFile(file) {
  const body = new FormData();
  body.append("image", file);
  body.append("type", "input");
  const response = await api.fetchApi("/upload/image", { method: "POST", body });
  if (response.status !== 200) {
    throw new Error(`upload of ${file.name} failed: ${response.status} ${response.statusText}`);
  }
  const saved = await response.json();
  return saved.subfolder ? `${saved.subfolder}/${saved.name}` : saved.name;
}

app.registerExtension({
  name: "DynaScene.PoseFileUpload",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const combo = this.widgets.find((w) => w.name === "pose_file");
      const picker = document.createElement("input");
      picker.type = "file";
      picker.accept = ".txt,text/plain";
      picker.style.display = "none";
      picker.onchange = async () => {
        const file = picker.files[0];
        picker.value = "";
        if (!file) return;
        try {
          const name = await uploadPoseFile(file);
          if (!combo.options.values.includes(name)) combo.options.values.push(name);
          combo.value = name;
          combo.callback?.(name);
          app.graph.setDirtyCanvas(true);
        } catch (error) {
          alert(error.message);
        }
      };
      document.body.append(picker);
      const button = this.addWidget("button", "choose pose file to upload", null, () => picker.click());
      button.serialize = false;
      button.options = { ...(button.options || {}), serialize: false };
      const onRemoved = this.onRemoved;
      this.onRemoved = function () {
        picker.remove();
        return onRemoved?.apply(this, arguments);
      };
      return result;
    };
  },
});
